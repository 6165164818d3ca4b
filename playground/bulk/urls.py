from django.urls import path

from playground.bulk import views

app_name = "bulk"
urlpatterns = [
    path("", views.index, name="index"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset"),
    path("datasets/<int:dataset_id>/rename/", views.dataset_rename_view, name="dataset_rename"),
    path("datasets/<int:dataset_id>/delete/", views.dataset_delete_view, name="dataset_delete"),
    path("history/", views.history, name="history"),
    path("history.json", views.history_json, name="history_json"),
    path("history/clear/", views.jobs_clear_view, name="clear"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel_view, name="cancel"),
    path("jobs/<int:job_id>/retry/", views.job_retry_view, name="retry"),
    path("jobs/<int:job_id>/delete/", views.job_delete_view, name="delete"),
    path("jobs/<int:job_id>/results/", views.job_results, name="results"),
    path("jobs/<int:job_id>/results.<str:fmt>", views.job_download, name="download"),
]
