from django.urls import path

from playground.endpoints import views

app_name = "endpoints"
urlpatterns = [
    path("", views.endpoint_index, name="list"),
    path("<int:endpoint_id>/", views.endpoint_detail, name="detail"),
    path("<int:endpoint_id>/pause/", views.endpoint_pause, name="pause"),
    path("<int:endpoint_id>/delete/", views.endpoint_delete, name="delete"),
]
