from django import forms

from .models import Analysis


class AnalysisUploadForm(forms.Form):
    file = forms.FileField(
        label="Photo or video",
        widget=forms.ClearableFileInput(attrs={"accept": "image/*,video/*"}),
    )


class AnalysisFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Analysis.Status.choices], required=False
    )
    verdict = forms.ChoiceField(
        choices=[("", "Any verdict"), *Analysis.Verdict.choices], required=False
    )
