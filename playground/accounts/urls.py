from django.urls import include, path

from playground.accounts import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),  # before Django's own, which it replaces
    path("", include("django.contrib.auth.urls")),
]
