import uuid

from django import forms
from django.db.models import QuerySet

from .models import Analysis
from .selectors import HELD_ANY


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """One or more files; cleans to a list. An empty file is let through, to be refused by name
    with the other refusals (services.analysis_create), so one bad file does not refuse all."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        if not files:
            files = [None]  # raises "This field is required."
        return [super(MultipleFileField, self).clean(file, initial) for file in files]


class AnalysisUploadForm(forms.Form):
    file = MultipleFileField(
        label="Photos or videos",
        widget=MultipleFileInput(attrs={"accept": "image/*,video/*", "multiple": True}),
        help_text="Choose one or several files; each is analysed on its own.",
    )


class AnalysisFilterForm(forms.Form):
    """The history's search and filters. A filter with a wrong value is reported under its field
    and left out; the others still apply (views.history)."""

    q = forms.CharField(label="File name", required=False, max_length=255)
    status = forms.ChoiceField(
        label="Status", choices=[("", "Any status"), *Analysis.Status.choices], required=False
    )
    verdict = forms.ChoiceField(
        label="Result", choices=[("", "Any result"), *Analysis.Verdict.choices], required=False
    )
    uncertain_reason = forms.ChoiceField(  # the verdicts held at uncertain (ml/caution.py)
        label="Held at uncertain",
        choices=[
            ("", "Held or not"),
            (HELD_ANY, "Held, any reason"),
            ("few_frames", "Face seen briefly"),
            ("fake_moments", "Fake-looking moments"),
            ("ai_generated_video", "AI-generated video?"),
            ("ai_generated_hint", "Real, with an AI-generated hint"),
        ],
        required=False,
    )
    media_type = forms.ChoiceField(
        label="Type", choices=[("", "Photos and videos"), *Analysis.MediaType.choices], required=False
    )
    uploaded_from = forms.DateField(
        label="Uploaded from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    uploaded_to = forms.DateField(
        label="Uploaded until", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def beyond_the_name_in_use(self) -> bool:
        """Whether a filter other than the file name is set, or wrong: the history shows the
        filters unfolded on a phone then (static/js/history.js)."""
        return any(self.data.get(name) or name in self.errors for name in self.fields if name != "q")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("uploaded_from"), cleaned.get("uploaded_to")
        if start and end and end < start:
            self.add_error("uploaded_to", forms.ValidationError("This day is before the “from” day.", code="reversed"))
        return cleaned


class AnalysisSelectionForm(forms.Form):
    """Analyses picked in the history; only the requesting user's can be picked."""

    ids = forms.ModelMultipleChoiceField(
        queryset=Analysis.objects.none(),
        error_messages={"required": "Select at least one analysis."},
    )
    # An analysis deleted meanwhile (in another tab, through the API) is left out of the
    # selection and counted in `gone`, instead of refusing the whole selection.
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, owned: QuerySet[Analysis], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ids"].queryset = owned
        self.gone = 0  # picked analyses that are not (or no longer) among the user's: left out
        if self.is_bound and hasattr(self.data, "getlist"):
            asked = self.data.getlist("ids")
            ids = [_uuid(value) for value in asked]
            found = set(owned.filter(pk__in=[pk for pk in ids if pk]).values_list("pk", flat=True))
            kept = [value for value, pk in zip(asked, ids) if pk in found]
            self.gone = len(asked) - len(kept)
            self.data = self.data.copy()
            self.data.setlist("ids", kept)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
