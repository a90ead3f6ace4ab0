import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from unittest import mock

from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from detection.forms import AnalysisFilterForm
from detection.models import Analysis, AnalysisFace, AnalysisTrack
from ml.results import UNCERTAIN_REASONS

from accounts.services import user_create

from .base import (
    PASSWORD,
    BaseTestCase,
    PipelineTestCase,
    astronaut_jpeg,
    disk_full,
    heic_upload,
    online_video_upload,
    photo_upload,
    text_upload,
    throttle_rates,
    video_upload,
)


class UploadTests(BaseTestCase):
    url = reverse("detection:upload")

    def test_it_sends_anonymous_visitors_to_log_in(self):
        response = self.client.get(self.url)
        self.assertRedirects(response, f"{reverse('login')}?next={self.url}")

    def test_it_shows_the_form_with_the_size_limit(self):
        self.login(self.alice)
        with override_settings(DETECTION_MAX_UPLOAD_BYTES=5 * 1024 * 1024):
            response = self.client.get(self.url)
        self.assertContains(response, 'type="file"')
        self.assertContains(response, "up to 5 MB")

    def test_an_upload_is_stored_readable_by_the_sites_own_user_only(self):
        self.login(self.alice)
        self.client.post(self.url, {"file": photo_upload()})
        stored = Path(Analysis.objects.get(owner=self.alice).file.path)
        self.assertEqual(stored.stat().st_mode & 0o777, 0o600)
        self.assertEqual(stored.parent.stat().st_mode & 0o777, 0o700)

    def test_it_says_how_much_of_the_accounts_room_its_analyses_keep(self):
        self.login(self.alice)
        self.analysis_for(self.alice, content=b"x" * 1536)
        self.analysis_for(self.bob, content=b"x" * 4096)  # not hers
        with override_settings(DETECTION_USER_STORAGE_BYTES=5 * 1024**3):
            response = self.client.get(self.url)
        self.assertContains(
            response,
            '<span class="storage-use" id="storage-use">take up <span class="storage-stored">1.5\xa0KB</span> '
            "of the 5.0\xa0GB your account may store.</span>",
        )

    def test_the_room_line_is_there_but_hidden_while_nothing_is_kept_so_uploads_can_fill_it(self):
        self.login(self.alice)
        with override_settings(DETECTION_USER_STORAGE_BYTES=5 * 1024**3):
            response = self.client.get(self.url)
        self.assertContains(response, '<span class="storage-use" id="storage-use" hidden>take up')
        with override_settings(DETECTION_USER_STORAGE_BYTES=0):  # no limit: nothing to say
            self.assertNotContains(self.client.get(self.url), 'id="storage-use"')

    def test_a_file_past_the_accounts_room_is_refused_on_the_form_and_stores_nothing(self):
        self.login(self.alice)
        files_before = self.stored_files()
        with override_settings(DETECTION_USER_STORAGE_BYTES=100):
            response = self.client.post(self.url, {"file": photo_upload()})
        self.assertContains(response, "is larger than the 100 bytes one account may keep in all")
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())
        self.assertEqual(self.stored_files(), files_before)

    def test_it_stores_the_upload_as_a_queued_analysis_of_the_uploader(self):
        self.login(self.alice)

        response = self.client.post(self.url, {"file": photo_upload("my photo.jpg")})

        analysis = Analysis.objects.get(owner=self.alice)
        self.assertRedirects(response, reverse("detection:detail", args=[analysis.pk]))
        self.assertEqual(analysis.status, Analysis.Status.QUEUED)
        self.assertEqual(analysis.original_name, "my photo.jpg")
        self.assertEqual(analysis.media_type, Analysis.MediaType.IMAGE)
        self.assertEqual(analysis.size, analysis.file.size)
        self.assertEqual(len(analysis.sha256), 64)
        self.assertTrue(analysis.file.name.endswith("my_photo.jpg"))

    def test_it_queues_the_analysis_only_once_the_upload_is_committed(self):
        self.login(self.alice)
        with mock.patch("detection.services.async_task") as async_task:
            with self.captureOnCommitCallbacks() as callbacks:
                self.client.post(self.url, {"file": photo_upload()})
                async_task.assert_not_called()
            for callback in callbacks:
                callback()

        analysis = Analysis.objects.get(owner=self.alice)
        async_task.assert_called_once()
        self.assertEqual(
            async_task.call_args.args,
            ("detection.tasks.analysis_run_task", analysis.pk, analysis.queue_token),
        )

    def test_it_detects_a_video_by_its_content_whatever_its_name(self):
        self.login(self.alice)
        self.client.post(self.url, {"file": video_upload("clip.jpg")})
        self.assertEqual(Analysis.objects.get(owner=self.alice).media_type, Analysis.MediaType.VIDEO)

    def test_it_refuses_an_oversize_upload_with_a_message_and_stores_nothing(self):
        self.login(self.alice)
        files_before = self.stored_files()

        with override_settings(DETECTION_MAX_UPLOAD_BYTES=1024):
            response = self.client.post(self.url, {"file": photo_upload()})

        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "The file is too large")
        self.assertContains(response, "the limit is 0.0 MB")
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())
        self.assertEqual(self.stored_files(), files_before)

    def test_several_files_without_javascript_keep_the_good_ones_and_name_the_refused_ones(self):
        from django.core.files.uploadedfile import SimpleUploadedFile

        self.login(self.alice)
        files = [photo_upload("good.jpg"), SimpleUploadedFile("empty.jpg", b""), SimpleUploadedFile("notes.txt", b"plain text")]

        response = self.client.post(self.url, {"file": files})

        self.assertEqual([a.original_name for a in Analysis.objects.filter(owner=self.alice)], ["good.jpg"])
        self.assertContains(response, "empty.jpg: The file is empty.")
        self.assertContains(response, "notes.txt: ")
        self.assertContains(response, "good.jpg was uploaded and queued.")

    def test_a_long_non_ascii_file_name_is_accepted(self):
        from django.core.files.uploadedfile import SimpleUploadedFile

        self.login(self.alice)

        response = self.client.post(self.url, {"file": SimpleUploadedFile("😀" * 100 + ".jpg", astronaut_jpeg())})

        analysis = Analysis.objects.get(owner=self.alice)
        self.assertRedirects(response, reverse("detection:detail", args=[analysis.pk]))
        self.assertTrue(analysis.file.storage.exists(analysis.file.name))

    def test_a_full_disk_is_a_message_on_the_form_and_leaves_nothing_behind(self):
        self.login(self.alice)
        before = (self.stored_files(), self.stored_folders())

        with disk_full(self.media_root, fail_on="analyses/"), self.assertLogs("detection.services", "ERROR"):
            response = self.client.post(self.url, {"file": photo_upload()})

        self.assertContains(response, "The server has no room to store your file right now.")
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())
        self.assertEqual((self.stored_files(), self.stored_folders()), before)

    def test_it_refuses_a_file_that_is_not_an_image_or_video_whatever_its_name(self):
        self.login(self.alice)
        files_before = self.stored_files()

        response = self.client.post(self.url, {"file": text_upload("holiday.jpg")})

        self.assertContains(response, "This file is named like a photo, but its content is not one the site can read")
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())
        self.assertEqual(self.stored_files(), files_before)

    def test_it_refuses_an_iphone_heic_photo_and_says_to_send_a_jpeg(self):
        self.login(self.alice)
        files_before = self.stored_files()

        response = self.client.post(self.url, {"file": heic_upload()})

        self.assertContains(response, "HEIC/HEIF photos are not supported. Save the photo as JPEG")
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())
        self.assertEqual(self.stored_files(), files_before)

    def test_it_refuses_a_post_without_a_file(self):
        self.login(self.alice)
        response = self.client.post(self.url, {})
        self.assertContains(response, "This field is required.")
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())


class UploadPipelineTests(PipelineTestCase):
    """Upload through the page, then the (inline) worker runs the real detector."""

    def upload(self, file):
        self.login(self.alice)
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("detection:upload"), {"file": file})
        analysis = Analysis.objects.get(owner=self.alice)
        self.assertRedirects(response, reverse("detection:detail", args=[analysis.pk]))
        return analysis

    def test_a_photo_is_analysed_and_its_face_found(self):
        analysis = self.upload(photo_upload())

        self.assertEqual(analysis.status, Analysis.Status.DONE, analysis.error)
        self.assertIn(analysis.verdict, {Analysis.Verdict.REAL, Analysis.Verdict.FAKE})
        self.assertEqual(analysis.progress, 1.0)
        self.assertEqual((analysis.width, analysis.height), (256, 256))
        self.assertIsNotNone(analysis.started_at)
        self.assertIsNotNone(analysis.finished_at)
        self.assertTrue(analysis.model_name)
        self.assertGreaterEqual(set(analysis.timings), {"decode", "faces", "classify"})
        frame = analysis.frames.get()
        self.assertEqual((frame.index, frame.time), (0, 0.0))
        face = frame.faces.first()
        self.assertIsNotNone(face, "no face found on the astronaut")
        self.assertEqual(analysis.faces_count, frame.faces.count())
        # The astronaut's face is in the upper middle of the picture.
        centre_x, centre_y = face.x + face.w / 2, face.y + face.h / 2
        self.assertTrue(64 < centre_x < 192 and 16 < centre_y < 160, face.box)
        self.assertTrue(0.0 <= face.fake_probability <= 1.0)
        self.assertTrue(face.heatmap)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk]))
        self.assertContains(page, analysis.get_verdict_display())
        self.assertContains(page, f"[{face.x}, {face.y}, {face.w}, {face.h}]")
        self.assertContains(page, reverse("detection:heatmap", args=[analysis.pk, face.pk]))
        self.assertContains(page, reverse("detection:frame-image", args=[analysis.pk, 0]))
        self.assertContains(
            page, f'x="{face.x}" y="{face.y}" width="{face.w}" height="{face.h}"', count=1
        )
        self.assertContains(page, 'data-finished="true"')

    def test_a_video_is_analysed_frame_by_frame(self):
        analysis = self.upload(video_upload())

        self.assertEqual(analysis.status, Analysis.Status.DONE, analysis.error)
        self.assertEqual(analysis.media_type, Analysis.MediaType.VIDEO)
        self.assertIn(analysis.verdict, {Analysis.Verdict.REAL, Analysis.Verdict.FAKE})
        self.assertEqual(analysis.frame_count, 10)
        self.assertGreater(analysis.duration, 0.5)
        frames = list(analysis.frames.all())
        self.assertEqual(len(frames), analysis.frames_analysed)
        self.assertGreater(len(frames), 1)
        self.assertEqual([f.index for f in frames], sorted({f.index for f in frames}))
        self.assertEqual([f.time for f in frames], sorted(f.time for f in frames))
        self.assertGreater(AnalysisFace.objects.filter(frame__analysis=analysis).count(), 0)

    def test_a_video_with_b_frames_as_found_online_is_analysed_like_any_other(self):
        analysis = self.upload(online_video_upload())

        self.assertEqual(analysis.status, Analysis.Status.DONE, analysis.error)
        self.assertEqual((analysis.media_type, analysis.frame_count), (Analysis.MediaType.VIDEO, 40))
        self.assertEqual(analysis.frames_analysed, 32)
        self.assertEqual(analysis.faces_count, AnalysisFace.objects.filter(frame__analysis=analysis).count())
        self.assertGreaterEqual(analysis.faces_count, 30, "the astronaut in (nearly) every sampled frame")

    def test_a_file_that_cannot_be_decoded_fails_with_its_message_shown(self):
        broken = photo_upload("broken.jpg")
        broken.file.truncate(200)  # a JPEG header with nothing after it

        analysis = self.upload(broken)

        self.assertEqual(analysis.status, Analysis.Status.FAILED)
        self.assertIn("broken.jpg", analysis.error)
        self.assertEqual(analysis.frames.count(), 0)
        page = self.client.get(reverse("detection:detail", args=[analysis.pk]))
        self.assertContains(page, "Failed")
        self.assertContains(page, analysis.error)


class HistoryTests(BaseTestCase):
    url = reverse("detection:history")

    def test_it_sends_anonymous_visitors_to_log_in(self):
        response = self.client.get(self.url)
        self.assertRedirects(response, f"{reverse('login')}?next={self.url}")

    def test_it_lists_only_the_users_own_analyses_newest_first(self):
        older = self.analysis_for(self.alice, original_name="older.jpg")
        newer = self.analysis_for(self.alice, original_name="newer.jpg")
        Analysis.objects.filter(pk=older.pk).update(created_at=newer.created_at.replace(year=2020))
        self.login(self.alice)

        response = self.client.get(self.url)

        self.assertEqual([a.pk for a in response.context["page"]], [newer.pk, older.pk])
        self.assertNotContains(response, "bob.jpg")

    def test_it_filters_by_status_and_verdict(self):
        self.done_analysis_for(self.alice, original_name="fake.jpg")
        self.done_analysis_for(self.alice, original_name="real.jpg", verdict="real", fake_probability=0.1)
        self.analysis_for(self.alice, original_name="waiting.jpg")
        self.login(self.alice)

        done_fake = self.client.get(self.url, {"status": "done", "verdict": "fake"})
        queued = self.client.get(self.url, {"status": "queued"})

        self.assertEqual([a.original_name for a in done_fake.context["page"]], ["fake.jpg"])
        self.assertEqual([a.original_name for a in queued.context["page"]], ["waiting.jpg"])

    def test_it_shows_the_verdicts_held_at_uncertain_and_exports_the_same_ones(self):
        held = dict(verdict="uncertain", fake_probability=0.3, media_type="video")
        self.done_analysis_for(self.alice, original_name="brief.mp4", uncertain_reason="few_frames", **held)
        self.done_analysis_for(self.alice, original_name="moments.mp4", uncertain_reason="fake_moments", **held)
        self.done_analysis_for(self.alice, original_name="scored.mp4", **held)  # uncertain by its score
        self.login(self.alice)

        every_held = self.client.get(self.url, {"uncertain_reason": "any"})
        moments = self.client.get(self.url, {"uncertain_reason": "fake_moments"})
        exported = self.client.get(reverse("detection:history-export"), {"uncertain_reason": "any"})

        self.assertEqual(sorted(a.original_name for a in every_held.context["page"]), ["brief.mp4", "moments.mp4"])
        self.assertEqual([a.original_name for a in moments.context["page"]], ["moments.mp4"])
        self.assertContains(moments, '<option value="fake_moments" selected>Fake-looking moments</option>', html=True)
        rows = csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig")))
        self.assertEqual(sorted((row["file"], row["uncertain_reason"]) for row in rows), [
            ("brief.mp4", "few_frames"), ("moments.mp4", "fake_moments"),
        ])

    def test_every_reason_a_verdict_is_held_for_can_be_picked_in_the_history(self):
        offered = {value for value, _ in AnalysisFilterForm.base_fields["uncertain_reason"].choices}
        self.assertEqual(offered - {"", "any"}, set(UNCERTAIN_REASONS))

    def test_it_paginates_by_twenty_and_keeps_the_filters_in_the_page_links(self):
        for i in range(21):
            self.analysis_for(self.alice, original_name=f"photo-{i}.jpg")
        self.login(self.alice)

        first = self.client.get(self.url, {"status": "queued"})
        second = self.client.get(self.url, {"status": "queued", "page": 2})

        self.assertEqual(len(first.context["page"]), 20)
        self.assertContains(first, "?status=queued&amp;page=2")
        self.assertEqual(len(second.context["page"]), 1)

    def test_it_says_when_there_is_nothing_yet(self):
        self.login(self.alice)
        self.assertContains(self.client.get(self.url), "Nothing yet.")


class DetailTests(BaseTestCase):
    def test_it_hides_other_users_analyses(self):
        self.login(self.alice)
        response = self.client.get(reverse("detection:detail", args=[self.bobs_analysis.pk]))
        self.assertEqual(response.status_code, 404)

    def test_it_sends_anonymous_visitors_to_log_in(self):
        url = reverse("detection:detail", args=[self.bobs_analysis.pk])
        self.assertRedirects(self.client.get(url), f"{reverse('login')}?next={url}")

    def test_a_queued_analysis_follows_its_progress_and_says_its_place_in_the_queue(self):
        self.login(self.bob)

        response = self.client.get(reverse("detection:detail", args=[self.bobs_analysis.pk]))

        self.assertContains(response, "Queued")
        self.assertContains(response, f"<title>{self.bobs_analysis.original_name} (queued) · Deepfake detector</title>")
        self.assertContains(response, "Waiting in the queue: number 1")
        self.assertContains(response, 'aria-live="polite"')
        self.assertContains(response, "js/detail.js")
        self.assertContains(
            response, f'data-progress-url="{reverse("detection:progress", args=[self.bobs_analysis.pk])}"'
        )

    def test_a_queue_with_no_worker_up_says_so_once_it_has_waited_a_little(self):
        self.login(self.bob)
        progress = reverse("detection:progress", args=[self.bobs_analysis.pk])
        page = reverse("detection:detail", args=[self.bobs_analysis.pk])
        long_ago = timezone.now() - timedelta(minutes=2)

        self.enterContext(mock.patch("detection.workers.CLUSTERS_SEEN_FOR_SECONDS", 0))  # read each time
        just_queued = self.client.get(progress).json()
        Analysis.objects.filter(pk=self.bobs_analysis.pk).update(enqueued_at=long_ago)
        with mock.patch("detection.workers.Stat.get_all", return_value=[object()]):  # a cluster is up
            with_worker = self.client.get(progress).json()
        with mock.patch("detection.workers.Stat.get_all", return_value=[]):
            without = self.client.get(progress).json()
            shown = self.client.get(page)

        self.assertFalse(just_queued["no_worker"])  # a worker may still be starting
        self.assertFalse(with_worker["no_worker"])
        self.assertTrue(without["no_worker"])
        self.assertContains(shown, "No worker is running to analyse files just now")
        self.assertNotContains(shown, 'data-no-worker hidden')

    def test_a_done_analysis_shows_its_verdict_frames_and_faces(self):
        analysis = self.done_analysis_for(self.alice)
        self.login(self.alice)

        response = self.client.get(reverse("detection:detail", args=[analysis.pk]))

        self.assertContains(response, "Fake")
        self.assertContains(response, "91.0%")
        self.assertContains(response, "[80, 40, 100, 100]")
        self.assertContains(response, 'x="80" y="40" width="100" height="100"')
        self.assertContains(response, "P1 91.0%")
        self.assertContains(response, "test-model, version")
        self.assertContains(response, reverse("detection:model-card") + "#in-plain-words")
        self.assertContains(response, reverse("detection:result-json", args=[analysis.pk]))
        self.assertContains(response, reverse("detection:report", args=[analysis.pk]))
        # the browser tab and the screen reader say what the page is and what came of it
        self.assertContains(response, f"<title>{analysis.original_name} (Fake: face swap) · Deepfake detector</title>")
        self.assertContains(response, 'aria-label="Person 1’s face, as the model saw it"')
        self.assertContains(response, "The photo, with the faces the model scored outlined")

    def test_the_sentence_says_what_each_verdict_means(self):
        self.login(self.alice)
        cases = {
            "fake": (0.91, "likely manipulated"),
            "uncertain": (0.45, "The model is unsure"),
            "real": (0.05, "not proof that the file is authentic"),
            "no_face": (None, "nothing was judged"),
        }
        for verdict, (probability, words) in cases.items():
            with self.subTest(verdict=verdict):
                analysis = self.done_analysis_for(
                    self.alice, verdict=verdict, fake_probability=probability, threshold_real=0.3
                )
                page = self.client.get(reverse("detection:detail", args=[analysis.pk]))
                self.assertContains(page, words)
                self.assertContains(page, f"badge-{verdict}")

    def test_a_photo_without_a_face_says_so_without_a_legend_of_box_colours(self):
        with_face = self.done_analysis_for(self.alice)
        without = self.done_analysis_for(self.alice, verdict="no_face", fake_kind="", fake_probability=None, faces_count=0)
        AnalysisFace.objects.filter(frame__analysis=without).delete()
        without.tracks.all().delete()
        self.login(self.alice)

        shown = self.client.get(reverse("detection:detail", args=[with_face.pk]))
        empty = self.client.get(reverse("detection:detail", args=[without.pk]))

        self.assertContains(shown, 'aria-label="Box colours"')
        self.assertNotContains(shown, "no boxes to show")
        self.assertContains(empty, "No face was found, so there are no boxes to show.")
        self.assertNotContains(empty, 'aria-label="Box colours"')
        self.assertContains(empty, 'alt="The photo (no face found)"')

    def test_it_says_how_many_faces_were_left_out_and_boxes_rejected(self):
        analysis = self.done_analysis_for(self.alice)
        analysis.frames.update(faces_left_out=2, boxes_rejected=3)
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk]))

        self.assertContains(page, "2 more faces were found but not scored")
        self.assertContains(page, "3 boxes from the face finder were rejected and not scored: not a face, or a face too blurred to judge")

    def test_the_stage_times_name_the_stages_and_the_second_model_timed_with_the_first(self):
        analysis = self.done_analysis_for(self.alice, timings={"decode": 0.01, "faces": 0.02, "classify": 0.03, "synthetic": 0.0})
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk]))

        # each stage in words (in the order the database keeps them: PostgreSQL's jsonb sorts keys)
        for words in ("reading the file 0.01 s", "finding faces 0.02 s", "face-swap model 0.03 s",
                      "AI-generated face model run beside the face-swap model, timed with it"):
            self.assertContains(page, words)
        self.assertNotContains(page, "AI-generated face model 0.00 s")

    def test_a_verdict_that_leaves_found_faces_unscored_says_so_beside_it(self):
        analysis = self.done_analysis_for(self.alice, verdict=Analysis.Verdict.REAL, fake_probability=0.02)
        self.login(self.alice)
        whole = self.client.get(reverse("detection:detail", args=[analysis.pk]))
        analysis.frames.update(faces_left_out=1)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk]))

        self.assertNotContains(whole, 'id="verdict-faces-left-out"')
        verdict_card = page.content.decode().split('id="verdict"', 1)[1].split("</section>", 1)[0]
        self.assertIn("1 more face was found but not scored", verdict_card)
        self.assertIn("this verdict does not speak for it", verdict_card)
        self.assertContains(page, "or it was beyond the 1 largest")  # the cap the frame shows: 1 scored, 1 left out

    def test_faces_left_out_are_told_with_the_cap_the_analysis_ran_under_not_todays(self):
        """A photo analysed when 4 faces were scored at most (8 since 2026-11-27)."""
        analysis = self.done_analysis_for(self.alice)
        frame = analysis.frames.get()
        for index in range(1, 4):
            AnalysisFace.objects.create(frame=frame, index=index, x=10 * index, y=0, w=20, h=20, fake_probability=0.1, track=index + 1)
        analysis.frames.update(faces_left_out=2)
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk]))

        self.assertContains(page, "only the 4 largest are scored")
        self.assertContains(page, "or it was beyond the 4 largest")
        self.assertNotContains(page, "8 largest")


class DeleteTests(BaseTestCase):
    def test_it_asks_for_confirmation_first(self):
        self.login(self.bob)
        response = self.client.get(reverse("detection:delete", args=[self.bobs_analysis.pk]))
        self.assertContains(response, "Delete bob.jpg?")
        self.assertTrue(Analysis.objects.filter(pk=self.bobs_analysis.pk).exists())

    def test_it_deletes_the_analysis_its_file_and_its_heatmaps(self):
        analysis = self.done_analysis_for(self.alice)
        self.login(self.alice)
        alices_files = [p for p in self.stored_files() if analysis.pk.hex in str(p)]
        self.assertEqual(len(alices_files), 4)  # upload, thumbnail, photo, heatmap

        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("detection:delete", args=[analysis.pk]), follow=True)

        self.assertRedirects(response, reverse("detection:history"))
        self.assertContains(response, "photo.jpg and its results were deleted.")
        self.assertFalse(Analysis.objects.filter(pk=analysis.pk).exists())
        self.assertFalse(AnalysisFace.objects.filter(frame__analysis_id=analysis.pk).exists())
        self.assertFalse(any(path.exists() for path in alices_files))
        self.assertFalse((self.media_root / "analyses" / analysis.pk.hex).exists())

    def test_it_hides_other_users_analyses_and_keeps_them(self):
        self.login(self.alice)
        url = reverse("detection:delete", args=[self.bobs_analysis.pk])

        self.assertEqual(self.client.get(url).status_code, 404)
        self.assertEqual(self.client.post(url).status_code, 404)
        self.assertTrue(Analysis.objects.filter(pk=self.bobs_analysis.pk).exists())
        self.assertTrue(self.bobs_analysis.file.storage.exists(self.bobs_analysis.file.name))


class FrontPageTests(BaseTestCase):
    url = reverse("detection:home")

    def test_it_tells_visitors_what_the_site_does_and_does_not_do(self):
        response = self.client.get(self.url)
        self.assertContains(response, "What it does not do")
        self.assertContains(response, reverse("signup"))
        self.assertContains(response, reverse("login"))

    def test_it_sends_signed_in_people_to_the_upload_page(self):
        self.login(self.alice)
        self.assertRedirects(self.client.get(self.url), reverse("detection:upload"))


class SeveralFilesUploadTests(BaseTestCase):
    url = reverse("detection:upload")

    def test_the_plain_form_makes_one_analysis_per_file(self):
        self.login(self.alice)

        response = self.client.post(self.url, {"file": [photo_upload("a.jpg"), video_upload("b.mp4")]})

        self.assertRedirects(response, reverse("detection:history"))
        names = Analysis.objects.filter(owner=self.alice).values_list("original_name", flat=True)
        self.assertEqual(sorted(names), ["a.jpg", "b.mp4"])

    def test_the_plain_form_counts_against_the_same_upload_limit_as_the_api(self):
        self.login(self.alice)

        with throttle_rates(uploads="2/hour"):
            page = self.client.post(self.url, {"file": [photo_upload("a.jpg"), photo_upload("b.jpg"), photo_upload("c.jpg")]})
            api = self.client.post(reverse("detection_api:analyses"), {"file": photo_upload("d.jpg")})

        self.assertContains(page, "c.jpg: You have reached the upload limit of 2 files an hour. Try again in 60 minutes.")
        names = Analysis.objects.filter(owner=self.alice).values_list("original_name", flat=True)
        self.assertEqual(sorted(names), ["a.jpg", "b.jpg"])
        self.assertEqual(api.status_code, 429)

    def test_a_file_the_form_refuses_does_not_count_against_the_upload_limit(self):
        self.login(self.alice)

        with throttle_rates(uploads="1/hour"):
            self.client.post(self.url, {"file": [text_upload("notes.jpg"), photo_upload("a.jpg")]})

        names = Analysis.objects.filter(owner=self.alice).values_list("original_name", flat=True)
        self.assertEqual(list(names), ["a.jpg"])

    def test_it_names_each_refused_file_and_keeps_the_accepted_ones(self):
        self.login(self.alice)

        response = self.client.post(self.url, {"file": [photo_upload("a.jpg"), text_upload("notes.jpg")]})

        self.assertContains(response, "notes.jpg: This file is named like a photo, but its content is not one the site can read")
        self.assertContains(response, "a.jpg was uploaded and queued.")
        names = Analysis.objects.filter(owner=self.alice).values_list("original_name", flat=True)
        self.assertEqual(list(names), ["a.jpg"])

    def test_the_page_carries_the_size_limit_for_the_browser_check(self):
        self.login(self.alice)
        with override_settings(DETECTION_MAX_UPLOAD_BYTES=5 * 1024 * 1024):
            response = self.client.get(self.url)
        self.assertContains(response, f'data-max-bytes="{5 * 1024 * 1024}"')
        self.assertContains(response, "multiple")


class HistorySearchTests(BaseTestCase):
    url = reverse("detection:history")

    def test_it_finds_analyses_by_part_of_the_file_name_in_any_case(self):
        self.analysis_for(self.alice, original_name="Holiday beach.jpg")
        self.analysis_for(self.alice, original_name="office.jpg")
        self.login(self.alice)

        response = self.client.get(self.url, {"q": "BEACH"})

        self.assertEqual([a.original_name for a in response.context["page"]], ["Holiday beach.jpg"])

    def test_it_finds_names_in_any_case_of_any_script_and_either_unicode_form(self):
        self.analysis_for(self.alice, original_name="réal face.png")  # é as one character
        self.analysis_for(self.alice, original_name="Straße ΣΟΦΙΑ.jpg")
        self.analysis_for(self.alice, original_name="other.jpg")
        self.login(self.alice)

        def found(query: str) -> list[str]:
            return [a.original_name for a in self.client.get(self.url, {"q": query}).context["page"]]

        self.assertEqual(found("RÉAL"), ["réal face.png"])
        self.assertEqual(found("re\u0301al"), ["réal face.png"])  # é as e + a combining accent
        self.assertEqual(found("strasse σοφια"), ["Straße ΣΟΦΙΑ.jpg"])
        self.assertEqual(found("100%"), [])  # LIKE's wildcards are plain characters
        self.analysis_for(self.alice, original_name="ᴴᴵ.jpg")  # NFKC gives capitals, folded too
        self.assertEqual(found("hi"), ["ᴴᴵ.jpg"])
        older = self.analysis_for(self.alice, original_name="Saved by older code.jpg")
        Analysis.objects.filter(pk=older.pk).update(name_folded="")  # during an upgrade (migration 0010)
        self.assertEqual(found("by older"), ["Saved by older code.jpg"])

    def test_it_filters_by_type_and_upload_day(self):
        old = self.analysis_for(self.alice, original_name="old.jpg")
        Analysis.objects.filter(pk=old.pk).update(created_at=old.created_at.replace(year=2020))
        self.analysis_for(self.alice, original_name="new.jpg")
        self.analysis_for(self.alice, original_name="clip.mp4", media_type="video")
        self.login(self.alice)

        photos_since_2021 = self.client.get(
            self.url, {"media_type": "image", "uploaded_from": "2021-01-01"}
        )
        until_2020 = self.client.get(self.url, {"uploaded_to": "2020-12-31"})

        self.assertEqual([a.original_name for a in photos_since_2021.context["page"]], ["new.jpg"])
        self.assertEqual([a.original_name for a in until_2020.context["page"]], ["old.jpg"])

    def test_a_filter_with_a_wrong_value_is_reported_and_the_others_still_apply(self):
        self.analysis_for(self.alice, original_name="beach.jpg")
        self.analysis_for(self.alice, original_name="office.jpg")
        self.login(self.alice)

        response = self.client.get(self.url, {"q": "beach", "uploaded_from": "notadate", "status": "bogus"})

        self.assertEqual([a.original_name for a in response.context["page"]], ["beach.jpg"])
        self.assertContains(response, "Enter a valid date.")
        self.assertContains(response, "Select a valid choice.")
        self.assertNotContains(response, "export.csv")  # it would not hold what was asked for
        export = self.client.get(reverse("detection:history-export"), {"q": "beach", "uploaded_from": "notadate"})
        self.assertContains(export, "Uploaded from: Enter a valid date.", status_code=400)

    def test_a_reversed_day_range_says_so(self):
        self.analysis_for(self.alice, original_name="beach.jpg")
        self.login(self.alice)

        response = self.client.get(self.url, {"uploaded_from": "2026-02-01", "uploaded_to": "2026-01-01"})

        self.assertContains(response, "This day is before the “from” day.")
        nothing = self.client.get(self.url, {"q": "mountain", "uploaded_from": "2026-02-01", "uploaded_to": "2026-01-01"})
        self.assertContains(nothing, "No analysis matches: the filter with a wrong value, marked above, was left out.")

    def test_the_menu_marks_the_page_it_is_on(self):
        self.login(self.alice)

        history = self.client.get(self.url)

        self.assertContains(history, f'<a href="{self.url}" aria-current="page">History</a>', html=True)
        self.assertContains(history, 'aria-current="page"', count=1)

    def test_every_filter_has_a_visible_label(self):
        self.login(self.alice)
        response = self.client.get(self.url)
        for field in ("q", "status", "verdict", "media_type", "uploaded_from", "uploaded_to"):
            self.assertContains(response, f'<label for="id_{field}">')

    def test_each_row_has_a_badge_a_thumbnail_or_placeholder_and_a_time_with_its_zone(self):
        done = self.done_analysis_for(self.alice, original_name="fake.jpg")
        self.analysis_for(self.alice, original_name="waiting.mp4", media_type="video")
        self.login(self.alice)

        response = self.client.get(self.url)

        self.assertContains(response, 'class="badge badge-fake"')
        self.assertContains(response, 'class="badge badge-queued"')
        self.assertContains(response, 'class="thumb-placeholder"', count=1)
        self.assertContains(response, reverse("detection:analysis-thumbnail", args=[done.pk]))
        self.assertContains(response, " UTC</time>", count=2)


class HistoryExportTests(BaseTestCase):
    url = reverse("detection:history-export")

    def rows(self, response) -> list[dict]:
        body = b"".join(response.streaming_content).decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(body)))

    def test_it_downloads_the_users_own_analyses_with_their_verdicts_and_links(self):
        done = self.done_analysis_for(self.alice, original_name="fake.jpg", sha256="a" * 64)
        self.analysis_for(self.alice, original_name="waiting.mp4", media_type="video")
        self.login(self.alice)
        self.assertContains(self.client.get(reverse("detection:history")), 'href="/analyses/export.csv"')

        response = self.client.get(self.url)

        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        self.assertIn("attachment", response["Content-Disposition"])
        self.assertIn("no-store", response["Cache-Control"])
        rows = self.rows(response)
        self.assertEqual([row["file"] for row in rows], ["waiting.mp4", "fake.jpg"])  # newest first
        fake = rows[1]
        self.assertEqual(fake["id"], str(done.pk))
        self.assertEqual((fake["verdict"], fake["fake_kind"], fake["probability"]), ("fake", "face_swap", "0.91"))
        self.assertEqual(fake["sha256"], "a" * 64)
        self.assertEqual(fake["page"], "http://testserver" + reverse("detection:detail", args=[done.pk]))
        self.assertEqual((rows[0]["status"], rows[0]["verdict"], rows[0]["probability"]), ("queued", "", ""))
        self.assertNotIn("bob.jpg", [row["file"] for row in rows])

    def test_it_keeps_the_historys_search_and_filters(self):
        self.analysis_for(self.alice, original_name="Holiday beach.jpg")
        self.analysis_for(self.alice, original_name="beach.mp4", media_type="video")
        self.analysis_for(self.alice, original_name="office.jpg")
        self.login(self.alice)
        page = self.client.get(reverse("detection:history"), {"q": "beach", "media_type": "image"})
        self.assertContains(page, "/analyses/export.csv?q=beach&amp;media_type=image")
        self.assertContains(page, "Download this analysis as CSV")

        response = self.client.get(self.url, {"q": "beach", "media_type": "image"})

        self.assertEqual([row["file"] for row in self.rows(response)], ["Holiday beach.jpg"])

    def test_a_file_name_a_spreadsheet_would_run_is_written_as_text(self):
        self.analysis_for(self.alice, original_name='=HYPERLINK("http://evil.example","x").jpg')
        self.analysis_for(self.alice, original_name="-2+3.jpg")
        self.login(self.alice)

        files = [row["file"] for row in self.rows(self.client.get(self.url))]

        self.assertEqual(files, ["'-2+3.jpg", "'=HYPERLINK(\"http://evil.example\",\"x\").jpg"])

    def test_nobody_downloads_someone_elses_history_but_staff_who_may_view_it(self):
        self.login(self.bob)
        self.assertEqual(self.client.get(self.url, {"user": "alice"}).status_code, 404)
        self.client.logout()
        self.assertEqual(self.client.get(self.url).status_code, 302)  # to the log-in page

        make_staff_reader(self.alice)
        self.login(self.alice)
        response = self.client.get(self.url, {"user": "bob"})

        self.assertEqual([row["file"] for row in self.rows(response)], ["bob.jpg"])
        self.assertIn("deepfake-analyses-bob-", response["Content-Disposition"])


class FileNameWrappingTests(BaseTestCase):
    def test_the_history_lets_a_long_name_wrap_between_its_parts_and_still_escapes_it(self):
        self.analysis_for(self.alice, original_name="<b>_clip-2.mp4")
        self.login(self.alice)

        response = self.client.get(reverse("detection:history"))

        self.assertContains(response, "&lt;b&gt;_<wbr>clip-<wbr>2.<wbr>mp4</a>")


class StatusPollTests(BaseTestCase):
    url = reverse("detection:statuses")

    def test_it_answers_the_status_of_the_users_own_analyses_only(self):
        mine = self.done_analysis_for(self.alice, original_name="fake.jpg")
        self.login(self.alice)

        response = self.client.get(self.url, {"id": [mine.pk, self.bobs_analysis.pk]})

        self.assertEqual(
            response.json()["analyses"],
            [
                {
                    "id": str(mine.pk),
                    "status": "done",
                    "status_label": "Done",
                    "progress": 1.0,
                    "verdict": "fake",
                    "verdict_label": "Fake: face swap",
                    "probability": 0.91,
                    "probability_label": "fake",
                    "error": "",
                }
            ],
        )

    def test_polling_many_analyses_costs_the_same_few_queries_as_polling_one(self):
        """Each row's label reads its thresholds (borderline): they must come with the rows."""
        ids = [self.done_analysis_for(self.alice, threshold=0.5, threshold_real=0.3).pk for _ in range(5)]
        self.login(self.alice)
        self.client.get(self.url, {"id": ids[:1]})  # the session's first reads

        with self.assertNumQueries(3):  # session, user, the analyses
            rows = self.client.get(self.url, {"id": ids}).json()["analyses"]

        self.assertEqual(len(rows), 5)

    def test_a_video_held_at_uncertain_is_polled_with_its_reason_and_what_its_probability_measures(self):
        held = self.done_analysis_for(
            self.alice, media_type="video", verdict="uncertain", fake_kind="", fake_probability=0.01,
            synthetic_probability=0.998, uncertain_reason="ai_generated_video",
        )
        self.login(self.alice)

        [row] = self.client.get(self.url, {"id": [held.pk]}).json()["analyses"]
        history = self.client.get(reverse("detection:history")).content.decode()

        self.assertEqual(
            (row["verdict_label"], row["probability"], row["probability_label"]),
            ("Uncertain: AI-generated?", 0.998, "AI-generated"),
        )
        self.assertIn("Uncertain: AI-generated?</span>", history)
        self.assertIn(">AI-generated probability 99.8%</td>", history)

    def test_a_failed_analysis_comes_with_the_reason(self):
        failed = self.analysis_for(self.alice, status="failed", error="clip.mp4: cannot open the video")
        self.login(self.alice)

        [answer] = self.client.get(self.url, {"id": [failed.pk]}).json()["analyses"]

        self.assertEqual((answer["status"], answer["error"]), ("failed", "clip.mp4: cannot open the video"))

    def test_an_ai_generated_face_is_reported_with_the_probability_its_verdict_stands_on(self):
        mine = self.done_analysis_for(self.alice, fake_kind="ai_generated", fake_probability=0.001, synthetic_probability=0.93)
        self.login(self.alice)

        [answer] = self.client.get(self.url, {"id": [mine.pk]}).json()["analyses"]

        self.assertEqual((answer["verdict_label"], answer["probability"]), ("Fake: AI-generated face", 0.93))

    def test_it_refuses_a_malformed_id(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(self.url, {"id": "nope"}).status_code, 400)


class DeleteManyTests(BaseTestCase):
    url = reverse("detection:delete-many")

    def test_it_asks_for_confirmation_and_lists_the_chosen_analyses(self):
        first = self.analysis_for(self.alice, original_name="first.jpg")
        second = self.analysis_for(self.alice, original_name="second.jpg")
        self.login(self.alice)

        response = self.client.post(self.url, {"ids": [first.pk, second.pk]})

        self.assertContains(response, "Delete 2 analyses?")
        self.assertContains(response, "first.jpg")
        self.assertEqual(Analysis.objects.filter(owner=self.alice).count(), 2)

    def test_once_confirmed_it_deletes_the_chosen_analyses_and_their_files(self):
        first = self.done_analysis_for(self.alice, original_name="first.jpg")
        second = self.analysis_for(self.alice, original_name="second.jpg")
        kept = self.analysis_for(self.alice, original_name="kept.jpg")
        self.login(self.alice)

        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                self.url, {"ids": [first.pk, second.pk], "confirmed": "true"}, follow=True
            )

        self.assertContains(response, "2 analyses were deleted.")
        self.assertEqual(list(Analysis.objects.filter(owner=self.alice)), [kept])
        self.assertFalse(any(first.pk.hex in str(p) or second.pk.hex in str(p) for p in self.stored_files()))

    def test_it_never_deletes_other_users_analyses(self):
        mine = self.analysis_for(self.alice, original_name="mine.jpg")
        self.login(self.alice)

        response = self.client.post(
            self.url, {"ids": [mine.pk, self.bobs_analysis.pk], "confirmed": "true"}, follow=True
        )

        self.assertRedirects(response, reverse("detection:history"))
        self.assertTrue(Analysis.objects.filter(pk=self.bobs_analysis.pk).exists())
        self.assertFalse(Analysis.objects.filter(pk=mine.pk).exists())

    def test_an_analysis_deleted_meanwhile_is_left_out_and_the_others_are_deleted(self):
        first = self.analysis_for(self.alice, original_name="first.jpg")
        second = self.analysis_for(self.alice, original_name="second.jpg")
        self.login(self.alice)
        page = self.client.post(self.url, {"ids": [first.pk, second.pk]})
        self.assertContains(page, "Delete 2 analyses?")
        self.client.delete(reverse("detection_api:analysis-detail", args=[first.pk]))  # another tab, or a script

        response = self.client.post(self.url, {"ids": [first.pk, second.pk], "confirmed": "true"}, follow=True)

        self.assertContains(response, "1 analysis was deleted. 1 of the selected analyses was deleted already.")
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_a_selection_deleted_meanwhile_says_so(self):
        gone = self.analysis_for(self.alice, original_name="gone.jpg")
        self.login(self.alice)
        Analysis.objects.filter(pk=gone.pk).delete()

        response = self.client.post(self.url, {"ids": [gone.pk, "not-an-id"]}, follow=True)

        self.assertContains(response, "2 of the selected analyses were deleted already.")

    def test_it_asks_for_a_selection_when_nothing_was_chosen(self):
        self.login(self.alice)
        response = self.client.post(self.url, {}, follow=True)
        self.assertContains(response, "Select at least one analysis.")


def make_staff_reader(user) -> None:
    """Staff with the permission to view analyses, which reading other people's takes."""
    from django.contrib.auth.models import Permission

    user.is_staff = True
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="view_analysis", content_type__app_label="detection"))


class StaffViewTests(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        make_staff_reader(self.alice)

    def test_staff_who_may_change_analyses_in_the_admin_may_read_them_here(self):
        from django.contrib.auth.models import Permission

        analysis = self.done_analysis_for(self.bob)
        carol = user_create(username="carol", email="carol@example.org", password=PASSWORD)
        carol.is_staff = True
        carol.save()
        carol.user_permissions.add(Permission.objects.get(codename="change_analysis", content_type__app_label="detection"))
        self.login(carol)

        self.assertEqual(self.client.get(reverse("detection:detail", args=[analysis.pk])).status_code, 200)

    def test_staff_without_the_permission_to_view_analyses_see_only_their_own(self):
        analysis = self.done_analysis_for(self.bob)
        carol = user_create(username="carol", email="carol@example.org", password=PASSWORD)
        carol.is_staff = True
        carol.save()
        self.login(carol)

        self.assertEqual(self.client.get(reverse("detection:detail", args=[analysis.pk])).status_code, 404)
        self.assertEqual(self.client.get(reverse("detection:file", args=[analysis.pk])).status_code, 404)
        self.assertEqual(self.client.get(reverse("detection:history"), {"user": "bob"}).status_code, 404)

    def test_staff_see_any_users_result_page_marked_as_staff_and_read_only(self):
        analysis = self.done_analysis_for(self.bob, original_name="bobs-fake.jpg")
        self.login(self.alice)

        response = self.client.get(reverse("detection:detail", args=[analysis.pk]))

        self.assertContains(response, "Viewing bob's analysis as staff.")
        self.assertNotContains(response, reverse("detection:delete", args=[analysis.pk]))

    def test_staff_see_any_users_history_read_only(self):
        self.login(self.alice)

        response = self.client.get(reverse("detection:history"), {"user": "bob"})

        self.assertContains(response, "Viewing bob's analyses as staff.")
        self.assertContains(response, "bob.<wbr>jpg")  # the name may wrap at its dot
        self.assertNotContains(response, 'name="ids"')

    def test_staff_may_download_any_users_file_but_not_delete_it(self):
        self.login(self.alice)

        download = self.client.get(reverse("detection:file", args=[self.bobs_analysis.pk]))
        delete = self.client.post(reverse("detection:delete", args=[self.bobs_analysis.pk]))

        self.assertEqual(download.status_code, 200)
        self.assertEqual(delete.status_code, 404)
        self.assertTrue(Analysis.objects.filter(pk=self.bobs_analysis.pk).exists())

    def test_other_people_still_get_404_for_someone_elses_analysis(self):
        self.login(self.bob)
        mine = self.analysis_for(self.alice, original_name="alices.jpg")

        self.assertEqual(self.client.get(reverse("detection:detail", args=[mine.pk])).status_code, 404)
        self.assertEqual(self.client.get(reverse("detection:file", args=[mine.pk])).status_code, 404)
        self.assertEqual(
            self.client.get(reverse("detection:history"), {"user": "alice"}).status_code, 404
        )


class ResultFilesTests(BaseTestCase):
    def image_urls(self, analysis) -> list[str]:
        face = analysis.frames.get().faces.get()
        return [
            reverse("detection:analysis-thumbnail", args=[analysis.pk]),
            reverse("detection:frame-image", args=[analysis.pk, 0]),
            reverse("detection:heatmap", args=[analysis.pk, face.pk]),
        ]

    def test_the_owner_and_staff_get_every_image(self):
        analysis = self.done_analysis_for(self.alice)
        staff = user_create(username="carol", email="carol@example.org", password=PASSWORD)
        make_staff_reader(staff)
        for user in (self.alice, staff):
            self.login(user)
            for url in self.image_urls(analysis):
                with self.subTest(user=user.username, url=url):
                    response = self.client.get(url)
                    self.assertEqual(response.status_code, 200)
                    self.assertIn("private", response.headers["Cache-Control"])

    def test_everyone_else_gets_404_for_every_image_and_download(self):
        analysis = self.done_analysis_for(self.bob)
        self.login(self.alice)
        urls = self.image_urls(analysis) + [
            reverse("detection:result-json", args=[analysis.pk]),
            reverse("detection:report", args=[analysis.pk]),
            reverse("detection:progress", args=[analysis.pk]),
        ]
        for url in urls:
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 404)

    def test_anonymous_visitors_are_sent_to_log_in(self):
        analysis = self.done_analysis_for(self.bob)
        for url in self.image_urls(analysis):
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 302)

    def test_the_staff_page_uses_image_urls_staff_can_open(self):
        analysis = self.done_analysis_for(self.bob)
        staff = user_create(username="carol", email="carol@example.org", password=PASSWORD)
        make_staff_reader(staff)
        self.login(staff)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk]))

        for url in self.image_urls(analysis)[1:]:
            self.assertContains(page, url)
        self.assertNotContains(page, "/api/v1/")

    def test_the_json_download_is_the_api_detail(self):
        analysis = self.done_analysis_for(self.alice)
        self.login(self.alice)

        download = self.client.get(reverse("detection:result-json", args=[analysis.pk]))
        api = self.client.get(reverse("detection_api:analysis-detail", args=[analysis.pk]))

        self.assertEqual(download.headers["Content-Disposition"], 'attachment; filename="photo.result.json"')
        self.assertEqual(json.loads(download.content), api.json())
        self.assertEqual(set(download.headers["Cache-Control"].split(", ")), {"private", "no-cache"})

    def test_the_report_names_the_fingerprint_the_model_and_the_thresholds(self):
        analysis = self.done_analysis_for(self.alice, sha256="ab" * 32, threshold_real=0.3)
        self.login(self.alice)

        report = self.client.get(reverse("detection:report", args=[analysis.pk]))

        self.assertContains(report, "ab" * 32)
        self.assertContains(report, "test-model")
        self.assertContains(report, "fake at or above 50.0%; real below 30.0%")
        self.assertContains(report, "photo.jpg")
        self.assertContains(report, "css/report.css")
        self.assertContains(report, "Print or save as PDF")

    def test_the_report_of_an_unfinished_analysis_offers_nothing_to_print(self):
        queued = self.analysis_for(self.alice)
        self.login(self.alice)

        report = self.client.get(reverse("detection:report", args=[queued.pk]))

        self.assertContains(report, "This analysis is queued: there is no result to report.")
        self.assertNotContains(report, "Print or save as PDF")
        self.assertNotContains(report, "The verdict is a model's estimate")


class ProgressTests(BaseTestCase):
    def test_it_gives_the_stage_and_the_place_in_the_queue(self):
        second = self.analysis_for(self.bob, original_name="second.jpg")
        self.login(self.bob)

        first = self.client.get(reverse("detection:progress", args=[self.bobs_analysis.pk])).json()
        after = self.client.get(reverse("detection:progress", args=[second.pk])).json()

        self.assertEqual((first["stage"], first["queue_position"]), ("queued", 1))
        self.assertEqual(after["queue_position"], 2)
        self.assertFalse(after["finished"])

    def test_an_analysis_queued_again_waits_behind_those_queued_before_it(self):
        second = self.analysis_for(self.bob, original_name="second.jpg")
        Analysis.objects.filter(pk=second.pk).update(enqueued_at=timezone.now() - timedelta(minutes=1))
        Analysis.objects.filter(pk=self.bobs_analysis.pk).update(enqueued_at=timezone.now())  # run again now
        self.login(self.bob)

        again = self.client.get(reverse("detection:progress", args=[self.bobs_analysis.pk])).json()

        self.assertEqual(again["queue_position"], 2)

    def test_a_running_analysis_names_its_stage_from_its_progress(self):
        self.login(self.bob)
        expected = [(0.1, "decoding"), (0.5, "faces"), (0.8, "classifying"), (0.9, "explaining")]
        for progress, stage in expected:
            with self.subTest(progress=progress):
                Analysis.objects.filter(pk=self.bobs_analysis.pk).update(status="running", progress=progress)
                state = self.client.get(reverse("detection:progress", args=[self.bobs_analysis.pk])).json()
                self.assertEqual((state["stage"], state["queue_position"]), (stage, 0))


class ModelCardTests(BaseTestCase):
    CARD = """# Model card: `test-model` 1.0

The **test** model.

| Source | AUC |
|---|--:|
| DFDC | 0.95 |

## Known limits

- It misses *small* faces.
- It was never shown `inswapper` swaps.

<script>alert("card")</script> and <b>bold</b> & more in a paragraph.

<div class="x">a raw block</div>

```sh
python -m ml check-search
```
"""

    def card_page(self, text: str) -> str:
        card = self.media_root / "MODEL_CARD.md"
        card.write_text(text, encoding="utf-8")
        with override_settings(DEEPFAKE_MODEL_CARD=card):
            page = self.client.get(reverse("detection:model-card"))
        self.assertEqual(page.status_code, 200)
        return page.content.decode()

    def test_it_shows_the_cards_known_limits_with_an_anchor(self):
        page = self.client.get(reverse("detection:model-card"))

        self.assertContains(page, 'id="known-limits"')
        self.assertContains(page, "Known limits")
        self.assertContains(page, '<a href="#known-limits">Known limits</a>', html=True)

    def test_the_card_starts_with_a_plain_words_section_for_people_who_read_a_verdict(self):
        page = self.client.get(reverse("detection:model-card")).content.decode()

        sections = re.findall(r'<section class="model-card-section" id="([^"]+)">', page)
        self.assertEqual(sections[1], "in-plain-words")  # right after the card's title
        plain = page[page.index('id="in-plain-words"'):page.index(f'id="{sections[2]}"')]
        for words in ("What the verdicts mean", "Known limits, in short", "one clue among others"):
            self.assertIn(words, plain)
        self.assertGreaterEqual(plain.count("<li>"), 9)  # the verdicts and the limits are lists

    def test_it_answers_404_when_the_card_is_missing(self):
        with override_settings(DEEPFAKE_MODEL_CARD=self.media_root / "missing.md"):
            self.assertEqual(self.client.get(reverse("detection:model-card")).status_code, 404)

    def test_a_markdown_table_becomes_a_table_with_its_header_cells_in_a_scroll_box(self):
        page = self.card_page(self.CARD)

        self.assertInHTML("<th>Source</th>", page)
        self.assertInHTML('<th align="right">AUC</th>', page)
        self.assertInHTML('<td align="right">0.95</td>', page)
        # a region named after its heading: a screen reader would stop on an unnamed group
        self.assertIn(
            '<div aria-label="Table 1 of “Model card: test-model 1.0”" class="table-scroll" role="region" tabindex="0"><table>',
            page,
        )
        self.assertNotIn("|---|", page)

    def test_lists_bold_and_code_are_rendered_not_shown_as_source(self):
        page = self.card_page(self.CARD)

        self.assertInHTML("<li>It misses <em>small</em> faces.</li>", page)
        self.assertInHTML("<strong>test</strong>", page)
        self.assertInHTML("<code>inswapper</code>", page)
        self.assertInHTML('<pre><code class="language-sh">python -m ml check-search\n</code></pre>', page)
        self.assertNotIn("<pre class=\"model-card-text\">", page)

    def test_raw_html_in_the_card_is_shown_as_text(self):
        page = self.card_page(self.CARD)

        self.assertNotIn("<script>alert", page)
        self.assertIn("&lt;script&gt;alert", page)
        self.assertNotIn("<b>bold</b>", page)
        self.assertIn("&lt;b&gt;bold&lt;/b&gt; &amp; more", page)
        self.assertNotIn('<div class="x">', page)
        self.assertIn('&lt;div class="x"&gt;a raw block', page)

    def test_the_rendered_card_needs_no_inline_styles(self):
        page = self.card_page(self.CARD)

        self.assertNotIn("style=", page)

    def test_each_section_keeps_its_id_and_the_known_limits_are_inside_theirs(self):
        page = self.card_page(self.CARD)

        self.assertIn('<a href="#known-limits">Known limits</a>', page)
        known_limits = page[page.index('<section class="model-card-section" id="known-limits">'):]
        self.assertIn("<li>It was never shown <code>inswapper</code> swaps.</li>", known_limits)
        self.assertInHTML("<h1>Model card: test-model 1.0</h1>", page)


def verdict_line_of(page: str) -> str:
    """The verdict badge and the probability beside it, as the result page and the report show them."""
    return page[page.index('<p class="verdict">'):page.index('<p class="sentence"')]


class TwoDetectorsOnThePageTests(BaseTestCase):
    def test_the_result_page_shows_both_scores_and_the_kind_of_fake(self):
        analysis = self.done_analysis_for(self.alice)
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        self.assertIn("Fake: face swap", page)
        self.assertIn("AI-generated face 2.0%", page)

    def test_an_ai_generated_face_is_named_as_such(self):
        analysis = self.done_analysis_for(self.alice, fake_kind="ai_generated", synthetic_probability=0.93)
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        self.assertIn("Fake: AI-generated face", page)
        self.assertIn("likely AI-generated", page)

    def test_an_ai_generated_face_is_headlined_with_its_ai_generated_probability_not_the_face_swap_one(self):
        # a red "Fake" beside the face-swap model's "0.1%" reads as a contradiction
        analysis = self.done_analysis_for(
            self.alice, fake_kind="ai_generated", fake_probability=0.001, synthetic_probability=0.93
        )
        self.login(self.alice)

        for name in ("detail", "report"):
            page = self.client.get(reverse(f"detection:{name}", args=[analysis.pk])).content.decode()
            headline = verdict_line_of(page)
            self.assertIn('<strong class="probability">93.0%</strong>', headline, name)
            self.assertIn("probability of an AI-generated face", headline, name)
            self.assertNotIn("0.1%", headline, name)
            self.assertIn("face swap 0.1%", page, name)  # the other score is still shown

    def test_a_person_judged_ai_generated_is_drawn_and_described_as_such_on_the_picture(self):
        analysis = self.done_analysis_for(
            self.alice, fake_kind="ai_generated", fake_probability=0.001, synthetic_probability=0.93
        )
        AnalysisTrack.objects.filter(analysis=analysis, number=1).update(synthetic_probability=0.93)
        AnalysisFace.objects.filter(frame__analysis=analysis).update(fake_probability=0.001)
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        self.assertIn('<rect class="box band-fake"', page)  # not the face-swap score's green
        self.assertNotIn("band-real", page[page.index('<svg class="boxes"'):page.index("</svg>")])
        self.assertIn(">P1 AI 93.0%</text>", page)
        self.assertIn("Person 1: AI-generated face 93.0% (face swap 0.1%).", page)
        self.assertIn("“AI” and the person’s probability of an AI-generated face", page)
        self.assertIn("These are the face-swap model’s heatmaps; the model that rated the face AI-generated draws none.", page)

    def test_the_headline_names_the_person_judged_ai_generated_not_the_most_face_swapped_one(self):
        analysis = self.done_analysis_for(
            self.alice, fake_kind="ai_generated", fake_probability=0.3, synthetic_probability=0.93, faces_count=2
        )
        AnalysisTrack.objects.filter(analysis=analysis, number=1).update(fake_probability=0.3, synthetic_probability=0.05)
        AnalysisTrack.objects.create(
            analysis=analysis, number=2, fake_probability=0.01, frames=1, first_time=0.0, last_time=0.0, counted=True,
            synthetic_probability=0.93,
        )
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        headline = verdict_line_of(page)
        self.assertIn("probability of an AI-generated face of person 2", headline)
        self.assertIn("rates person 2 as likely AI-generated", page)

    def test_a_person_under_the_ai_generated_threshold_keeps_the_face_swap_colours(self):
        analysis = self.done_analysis_for(self.alice, fake_probability=0.91, synthetic_probability=0.02)
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        self.assertIn(">P1 91.0%</text>", page)
        self.assertIn("Person 1: 91.0% (fake).", page)
        self.assertNotIn("“AI”", page)
        self.assertNotIn("the model that judged the face AI-generated", page)

    def test_a_face_swap_is_headlined_with_its_fake_probability(self):
        analysis = self.done_analysis_for(self.alice)
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        headline = verdict_line_of(page)
        self.assertIn('<strong class="probability">91.0%</strong>', headline)
        self.assertIn("fake probability", headline)

    def test_the_history_shows_an_ai_generated_fake_with_its_ai_generated_probability(self):
        self.done_analysis_for(
            self.alice, original_name="profile.jpg", fake_kind="ai_generated", fake_probability=0.001,
            synthetic_probability=0.93,
        )
        self.login(self.alice)

        page = self.client.get(reverse("detection:history")).content.decode()

        row = page[page.index("profile.jpg"):]
        row = row[:row.index("</tr>")]
        self.assertIn("Fake: AI-generated face", row)
        self.assertIn("93.0%", row)
        self.assertNotIn("0.1%", row)


class RerunTests(BaseTestCase):
    def rerun(self, analysis, **extra):
        with mock.patch("detection.services.analysis_enqueue") as enqueue, self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("detection:rerun", args=[analysis.pk]), follow=True, **extra)
        return response, enqueue

    def test_a_failed_analysis_offers_to_try_again_and_queues_it_on_the_kept_file(self):
        failed = self.analysis_for(self.alice, status=Analysis.Status.FAILED, error="The worker stopped.")
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[failed.pk]))
        self.assertContains(page, "Try the analysis again")
        self.assertContains(page, "no need to upload it again")
        response, enqueue = self.rerun(failed)

        self.assertRedirects(response, reverse("detection:detail", args=[failed.pk]))
        self.assertContains(response, "is queued to be analysed again")
        self.assertEqual(Analysis.objects.get(pk=failed.pk).status, Analysis.Status.QUEUED)
        enqueue.assert_called_once()

    def test_a_file_that_could_not_be_read_is_not_offered_a_retry_that_would_fail_again(self):
        unreadable = self.analysis_for(
            self.alice, status=Analysis.Status.FAILED, error="clip.mp4: cannot open the video", file_unreadable=True
        )
        self.login(self.alice)

        page = self.client.get(reverse("detection:detail", args=[unreadable.pk]))

        self.assertNotContains(page, 'id="rerun"')
        self.assertContains(page, "The reason above is in the file itself, so trying again would fail the same way.")

    def test_a_done_analysis_offers_to_analyse_again_but_a_waiting_one_does_not(self):
        self.login(self.alice)
        done = self.done_analysis_for(self.alice)
        queued = self.analysis_for(self.alice)

        page = self.client.get(reverse("detection:detail", args=[done.pk]))
        self.assertContains(page, "<summary>Analyse again…</summary>", html=True)  # asked before the result goes
        self.assertContains(page, "This result (verdict, boxes, heatmaps) is deleted at once")
        self.assertNotContains(self.client.get(reverse("detection:detail", args=[queued.pk])), 'id="rerun"')
        response, enqueue = self.rerun(queued)
        self.assertContains(response, "still waiting or running")
        enqueue.assert_not_called()

    def test_nobody_runs_anothers_analysis_again_not_even_staff_who_may_read_it(self):
        bobs = self.done_analysis_for(self.bob)
        make_staff_reader(self.alice)
        self.login(self.alice)

        self.assertNotContains(self.client.get(reverse("detection:detail", args=[bobs.pk])), 'id="rerun"')
        response = self.client.post(reverse("detection:rerun", args=[bobs.pk]))

        self.assertEqual(response.status_code, 404)
        self.assertEqual(Analysis.objects.get(pk=bobs.pk).status, Analysis.Status.DONE)

    def test_it_counts_as_an_upload_in_the_upload_limit(self):
        first, second = (self.analysis_for(self.alice, status=Analysis.Status.FAILED) for _ in range(2))
        self.login(self.alice)

        with throttle_rates(uploads="1/hour"):
            self.rerun(first)
            response, enqueue = self.rerun(second)

        self.assertContains(response, "upload limit of 1 file an hour")
        self.assertEqual(Analysis.objects.get(pk=second.pk).status, Analysis.Status.FAILED)
        enqueue.assert_not_called()

    def test_it_only_accepts_post(self):
        self.login(self.alice)
        failed = self.analysis_for(self.alice, status=Analysis.Status.FAILED)
        self.assertEqual(self.client.get(reverse("detection:rerun", args=[failed.pk])).status_code, 405)
