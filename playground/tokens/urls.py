from django.urls import path

from playground.tokens import views

app_name = "tokens"
urlpatterns = [
    path("", views.token_index, name="list"),
    path("new/", views.token_new, name="create"),
    path("<int:token_id>/revoke/", views.token_revoke, name="revoke"),
    path("<int:token_id>/limits/", views.token_limits, name="limits"),
]
