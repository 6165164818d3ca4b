from django.urls import path

from playground.bulk import views

app_name = "bulk"
urlpatterns = [
    path("", views.index, name="index"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset"),
]
