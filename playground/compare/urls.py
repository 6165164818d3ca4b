from django.urls import path

from playground.compare import views

app_name = "compare"
urlpatterns = [
    path("", views.compare, name="compare"),
]
