from django.apps import AppConfig


class ArtefactsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "artefacts"

    def ready(self):
        from records import scoping

        scoping.register_engagement_scope("artefacts.Artefact", timeline=scoping.in_engagement)
        scoping.register_engagement_scope("artefacts.DataReliance")
