from django.urls import path

from playground.chat import views

app_name = "chat"
urlpatterns = [
    path("", views.conversation_index, name="list"),
    path("new/", views.conversation_new, name="new"),
    path("<int:pk>/", views.conversation_open, name="open"),
    path("<int:pk>/rename/", views.conversation_rename, name="rename"),
    path("<int:pk>/delete/", views.conversation_delete, name="delete"),
    path("<int:pk>/export.md", views.conversation_export_md, name="export_md"),
    path("<int:pk>/export.json", views.conversation_export_json_view, name="export_json"),
]
