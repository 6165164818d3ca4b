from django.urls import path

from playground.presets import views

app_name = "presets"
urlpatterns = [
    path("", views.preset_index, name="index"),
    path("<int:pk>/delete/", views.preset_delete, name="delete"),
]
