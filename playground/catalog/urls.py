from django.urls import path

from playground.catalog import views

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("models/<str:model_id>/", views.card, name="card"),
    path("models/<str:model_id>/code/", views.card_code, name="card_code"),
    path("health", views.health, name="health"),
]
