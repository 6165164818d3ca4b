from django.urls import path

from playground.studio import views

app_name = "studio"
urlpatterns = [
    path("<str:model_id>/", views.playground, name="playground"),
    path("<str:model_id>/embeddings/", views.embeddings, name="embeddings"),
    path("<str:model_id>/speech/", views.speech, name="speech"),
]
