from django.contrib.auth import views as auth_views
from django.urls import path

from playground.accounts import views

# Django's account views, each with a template of this site: the admin app (listed before this one) ships
# registration/password_change_*.html and logged_out.html with its own branding, and a template looked up by
# those default names would be the admin's. Password reset is not served: it mails a link, and the site has
# no mail set up (an administrator sets a forgotten password in the admin).
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(template_name="accounts/logged_out.html"), name="logout"),
    path(
        "password_change/",
        auth_views.PasswordChangeView.as_view(template_name="accounts/password_change_form.html"),
        name="password_change",
    ),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="accounts/password_change_done.html"),
        name="password_change_done",
    ),
]
