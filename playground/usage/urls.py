from django.urls import path

from playground.usage import views

app_name = "usage"

urlpatterns = [
    path("", views.usage, name="usage"),
    path("export.csv", views.export_csv, name="export"),
]

# Mounted at /pricing/ by the project urls: a public page, outside the login-only /usage/ prefix.
pricing_urlpatterns = [
    path("", views.pricing, name="index"),
    path("calculate/", views.pricing_calculate, name="calculate"),
]
