"""API views of artefacts: upload, edit, review submission, versions and verified download.

The bytes are handled by the services (`artefacts.services`, which store them through
`artefacts.files`): a view never reads or writes them itself. Uploads are capped
before their body is read, so an oversize file answers 413 without being stored.
"""

from django.http import FileResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from records.api.parsers import JSONParser
from records.api.schema import error_response
from records.api.viewsets import KeptRecordViewSet, ServiceViewSetMixin

from .. import services
from ..files import install_max_size_upload_handler
from ..filters import ArtefactFilterSet, DataRelianceFilterSet
from ..models import Artefact, DataReliance
from .serializers import (
    ArtefactSerializer,
    ArtefactUploadSerializer,
    ArtefactVersionSerializer,
    DataRelianceSerializer,
)

# Actions whose request body is an uploaded file: the size cap goes in before it is read.
UPLOAD_ACTIONS = frozenset({"create", "versions"})
MULTIPART = "multipart/form-data"
NOSNIFF = "nosniff"

DOWNLOAD_DESCRIPTION = (
    "Stream the artefact's bytes as an attachment with its original file name. The bytes "
    "are checked against the stored SHA-256 first: missing or changed bytes are never "
    "served (409, and a critical audit event). `ETag` is the quoted SHA-256; send it back "
    "in `If-None-Match` to get 304 without a body. Every download is an artefact_access "
    "audit event."
)
UPLOAD_DESCRIPTION = (
    "multipart/form-data. The server streams the file once, computing its SHA-256, size and "
    "MIME type from the content and name, which must be a format the artefact type allows. "
    "Empty file or disallowed format: 400; larger than ARTEFACT_MAX_UPLOAD_SIZE: 413."
)
UPDATE_DESCRIPTION = (
    "Edit a draft's name, description, type or metadata. The file cannot be replaced here "
    "(400): upload a new version with POST /artefacts/{id}/versions/."
)


class FirstRendererNegotiation(BaseContentNegotiation):
    """Answer a download whatever the client accepts: the body is the file, not a rendering.

    Errors still render as JSON (the first renderer).
    """

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@extend_schema_view(
    list=extend_schema(summary="List the artefacts of your engagements"),
    retrieve=extend_schema(summary="An artefact's record (not its bytes: see download)"),
    create=extend_schema(
        summary="Upload a new artefact (version 1, draft)",
        description=UPLOAD_DESCRIPTION,
        request={MULTIPART: ArtefactUploadSerializer},
        responses={201: ArtefactSerializer, 413: error_response(413)},
    ),
    update=extend_schema(summary="Edit a draft artefact", description=UPDATE_DESCRIPTION),
    partial_update=extend_schema(summary="Edit a draft artefact", description=UPDATE_DESCRIPTION),
    destroy=extend_schema(summary="Delete an artefact (soft delete; never an approved one)"),
)
class ArtefactViewSet(ServiceViewSetMixin, viewsets.ModelViewSet):
    """Artefacts: the files of your engagements, with integrity and review state."""

    queryset = Artefact.objects.all()
    serializer_class = ArtefactSerializer
    filterset_class = ArtefactFilterSet
    search_fields = ("name", "description", "file_name", "content_hash")
    ordering_fields = ("created_at", "updated_at", "name", "version", "file_size", "status")
    service_object_name = "artefact"
    # Uploads are multipart forms; every other body (edits) is JSON (get_parsers).
    parser_classes = (JSONParser, MultiPartParser)

    def get_parsers(self):
        """Return the multipart parser for an upload, the JSON parser for any other body."""
        # The request and action_map are set on the view before DRF asks (ViewSetMixin).
        request = getattr(self, "request", None)
        method = request.method.lower() if request is not None else ""
        action_name = getattr(self, "action", None) or getattr(self, "action_map", {}).get(method)
        upload = action_name in UPLOAD_ACTIONS and method == "post"
        return [MultiPartParser() if upload else JSONParser()]

    def initial(self, request, *args, **kwargs):
        """Cap the upload size before anything (CSRF check, parsers) reads the body."""
        if self.action in UPLOAD_ACTIONS and request.method == "POST":
            install_max_size_upload_handler(request)
        super().initial(request, *args, **kwargs)

    def create(self, request, *args, **kwargs):
        data = self.validated_input(ArtefactUploadSerializer)
        artefact = services.artefact_create(
            upload=data.pop("file"), actor=self.actor, trace_id=self.trace_id(), **data
        )
        return Response(self.get_serializer(artefact).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.artefact_update(
            artefact=serializer.instance, actor=self.actor, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.artefact_delete(artefact=instance, actor=self.actor)

    @extend_schema(
        request=None,
        summary="Submit for review: draft → pending_review",
        description="Request the review itself on /approvals/ (which also submits a draft).",
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        return self.transition(services.artefact_submit_for_review)

    @extend_schema(
        request=None,
        summary="Archive (any state but archived; not while an approval is pending)",
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        return self.transition(services.artefact_archive)

    @extend_schema(
        methods=["GET"],
        summary="The version chain, oldest first",
        request=None,
        responses=ArtefactSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Upload changed bytes as the next version",
        description=UPLOAD_DESCRIPTION + " The artefact named in the URL becomes superseded; "
        "identical bytes are refused (409).",
        request={MULTIPART: ArtefactVersionSerializer},
        responses={201: ArtefactSerializer, 413: error_response(413)},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        permission_verbs={"GET": "view", "POST": "add"},
        pagination_class=None,
        filter_backends=(),
    )
    def versions(self, request, pk=None):
        artefact = self.get_object()
        if request.method == "POST":
            data = self.validated_input(ArtefactVersionSerializer)
            new_version = services.artefact_new_version(
                artefact=artefact,
                upload=data.pop("file"),
                actor=self.actor,
                trace_id=self.trace_id(),
                **data,
            )
            return Response(self.get_serializer(new_version).data, status=status.HTTP_201_CREATED)
        chain = version_chain(artefact, self.get_queryset())
        return Response(self.get_serializer(chain, many=True).data)

    @extend_schema(
        summary="Download the bytes (verified against the stored SHA-256)",
        description=DOWNLOAD_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The ETag of a copy you hold; 304 if it is still current.",
            )
        ],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The bytes; Content-Type is the artefact's MIME type.",
            ),
            304: OpenApiResponse(description="Not modified: your copy is current."),
            409: error_response(
                409, "The stored bytes are missing or differ from the record; not served."
            ),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        content_negotiation_class=FirstRendererNegotiation,
        filter_backends=(),
    )
    def download(self, request, pk=None):
        artefact = self.get_object()
        etag = f'"{artefact.content_hash}"'
        if _matches(request.headers.get("If-None-Match", ""), etag):
            response = HttpResponseNotModified()
            response["ETag"] = etag
            return response
        handle = services.artefact_open_for_download(artefact=artefact, actor=self.actor)
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=artefact.file_name,
            content_type=artefact.mime_type or "application/octet-stream",
        )
        response["ETag"] = etag
        response["X-Content-Type-Options"] = NOSNIFF
        return response


@extend_schema_view(
    list=extend_schema(summary="List the data reliance register of your engagements"),
    retrieve=extend_schema(summary="A data reliance entry"),
    create=extend_schema(
        summary="Record the register's entry for an input artefact",
        description="One entry per input artefact of the engagement (see the manual's "
        "Data reliance (ASOP 23)); a final sign-off is refused while any input data has none.",
    ),
    update=extend_schema(summary="Edit a data reliance entry"),
    partial_update=extend_schema(summary="Edit a data reliance entry"),
)
class DataRelianceViewSet(KeptRecordViewSet):
    """The data reliance register (ASOP 23): source, checks and limitations of input data."""

    queryset = DataReliance.objects.select_related("artefact", "validation_run")
    serializer_class = DataRelianceSerializer
    filterset_class = DataRelianceFilterSet
    search_fields = ("provider_name", "checks_performed", "known_limitations", "artefact__name")
    ordering_fields = ("created_at", "updated_at", "data_as_of", "provider_name")

    def perform_create(self, serializer):
        serializer.instance = services.reliance_record(
            actor=self.actor, trace_id=self.trace_id(), **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.reliance_update(
            reliance=serializer.instance, actor=self.actor, data=serializer.validated_data
        )


def _matches(if_none_match: str, etag: str) -> bool:
    """Return whether an If-None-Match header names `etag` (or `*`).

    The comparison is weak, as RFC 9110 asks for If-None-Match: `W/"…"` matches too.
    """
    etags = parse_etags(if_none_match) if if_none_match else []
    return "*" in etags or etag in {tag.removeprefix("W/") for tag in etags}


def version_chain(artefact: Artefact, visible) -> list[Artefact]:
    """Return every version of the artefact's chain, oldest first (deleted ones left out).

    One query reads the links of the engagement's artefacts (soft-deleted ones
    included, so a deleted version does not cut the chain), one the rows.
    """
    links = dict(
        Artefact.all_objects.filter(engagement_id=artefact.engagement_id).values_list(
            "pk", "previous_version_id"
        )
    )
    successors = {previous: pk for pk, previous in links.items() if previous is not None}
    oldest, seen = artefact.pk, {artefact.pk}
    while links.get(oldest) is not None and links[oldest] not in seen:
        oldest = links[oldest]
        seen.add(oldest)
    chain = [oldest]
    while chain[-1] in successors and successors[chain[-1]] not in chain:
        chain.append(successors[chain[-1]])
    rows = {row.pk: row for row in visible.filter(pk__in=chain)}
    return [rows[pk] for pk in chain if pk in rows]
