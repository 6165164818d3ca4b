from django.urls import path

from playground.projects import views

app_name = "projects"
urlpatterns = [
    path("", views.project_index, name="list"),
    path("switch/", views.project_switch, name="switch"),
    path("<int:project_id>/", views.project_detail, name="detail"),
    path("<int:project_id>/members/<int:member_id>/remove/", views.member_remove, name="member-remove"),
]
