from django.apps import AppConfig


class PresetsConfig(AppConfig):
    name = "playground.presets"
    label = "presets"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from playground.presets.receivers import remember_reply_settings

        # The chat app saves replies without knowing about remembered settings; this keeps the dependency one-way
        # (presets -> chat). dispatch_uid: connected once even if ready() runs again.
        post_save.connect(remember_reply_settings, sender="chat.Message", dispatch_uid="presets.remember_reply")
