from django.apps import AppConfig


class ArtefactsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "artefacts"

    def ready(self):
        from records import scoping
        from records.admin import register_page_extension

        from .admin import ENGAGEMENT_PAGE

        # The engagement page lists its artefacts and its data reliance register.
        register_page_extension("engagements.Engagement", ENGAGEMENT_PAGE)

        scoping.register_engagement_scope("artefacts.Artefact", timeline=scoping.in_engagement)
        scoping.register_engagement_scope("artefacts.DataReliance")
