from django.contrib.auth import get_user_model
from django.urls import reverse

from detection.models import Analysis

from .base import PASSWORD, BaseTestCase


class AnalysisAdminTests(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.admin = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
        self.login(self.admin)

    def test_the_list_shows_owner_status_and_verdict_and_filters_by_them(self):
        self.done_analysis_for(self.alice, original_name="alice-fake.jpg")

        response = self.client.get(
            reverse("admin:detection_analysis_changelist"), {"status__exact": "done"}
        )

        changelist = response.context["cl"]
        self.assertEqual([a.original_name for a in changelist.result_list], ["alice-fake.jpg"])
        self.assertContains(response, '<td class="field-owner nowrap">alice</td>', html=True)
        self.assertContains(response, '<td class="field-verdict">Fake</td>', html=True)

    def test_an_analysis_page_shows_its_frames(self):
        analysis = self.done_analysis_for(self.alice)
        response = self.client.get(reverse("admin:detection_analysis_change", args=[analysis.pk]))
        self.assertContains(response, "test-model")
        self.assertContains(response, "frame 0 at 0.00s")

    def test_deleting_in_the_admin_removes_the_files_too(self):
        analysis = self.done_analysis_for(self.alice)
        paths = [p for p in self.stored_files() if analysis.pk.hex in str(p)]

        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(
                reverse("admin:detection_analysis_changelist"),
                {"action": "delete_selected", "_selected_action": [analysis.pk], "post": "yes"},
            )

        self.assertFalse(Analysis.objects.filter(pk=analysis.pk).exists())
        self.assertFalse(any(p.exists() for p in paths))

    def test_deleting_a_user_in_the_admin_removes_their_analyses_files_too(self):
        analysis = self.done_analysis_for(self.alice)
        paths = [p for p in self.stored_files() if analysis.pk.hex in str(p)]
        bobs = [p for p in self.stored_files() if self.bobs_analysis.pk.hex in str(p)]

        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(reverse("admin:auth_user_delete", args=[self.alice.pk]), {"post": "yes"})

        self.assertFalse(Analysis.objects.filter(pk=analysis.pk).exists())
        self.assertTrue(paths and not any(p.exists() for p in paths))
        self.assertTrue(bobs and all(p.exists() for p in bobs))

    def test_an_admin_can_stop_a_stuck_analysis(self):
        self.client.post(
            reverse("admin:detection_analysis_changelist"),
            {"action": "fail_selected", "_selected_action": [self.bobs_analysis.pk]},
        )
        self.bobs_analysis.refresh_from_db()
        self.assertEqual(self.bobs_analysis.status, Analysis.Status.FAILED)
        self.assertEqual(self.bobs_analysis.error, "Stopped by an administrator.")

    def test_the_links_to_the_stored_file_and_the_result_page_work_for_staff(self):
        analysis = self.done_analysis_for(self.alice, original_name="alice-fake.jpg")
        response = self.client.get(reverse("admin:detection_analysis_change", args=[analysis.pk]))

        file_url = reverse("detection:file", args=[analysis.pk])
        page_url = reverse("detection:detail", args=[analysis.pk])
        self.assertContains(response, f'href="{file_url}"')
        self.assertContains(response, f'href="{page_url}"')
        self.assertContains(response, f'href="{reverse("detection:history")}?user=alice"')
        download = self.client.get(file_url)
        self.assertEqual(download.status_code, 200)
        with analysis.file.open("rb") as stored:
            self.assertEqual(b"".join(download.streaming_content), stored.read())
        self.assertContains(self.client.get(page_url), "Viewing alice's analysis as staff.")

    def test_admin_pages_carry_the_favicon(self):
        response = self.client.get(reverse("admin:index"))
        self.assertContains(response, "favicon.svg")
