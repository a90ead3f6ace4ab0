import base64
import itertools
from datetime import timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.services import api_token_create
from detection import services, wait
from detection.models import Analysis
from detection.wakeup import DatabaseWatch
from ml.results import FAKE_KINDS, UNCERTAIN_REASONS

from .base import (
    BaseTestCase,
    PipelineTestCase,
    astronaut_jpeg,
    disk_full,
    heic_upload,
    photo_upload,
    text_upload,
    throttle_rates,
    video_upload,
)


class ApiTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice_token = self.alice_key

    def auth(self, token: str | None = None) -> dict:
        return {"HTTP_AUTHORIZATION": f"Token {token or self.alice_token}"}

    def get(self, url, data=None, **extra):
        return self.client.get(url, data, **{**self.auth(), **extra})

    def upload(self, file, *, query: str = "", **extra):
        url = reverse("detection_api:analyses") + query
        return self.client.post(url, {"file": file}, **{**self.auth(), **extra})


class AuthenticationTests(ApiTestCase):
    def test_it_answers_401_without_a_token(self):
        response = self.client.get(reverse("detection_api:analyses"))

        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json(), {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"})
        self.assertEqual(response.headers["WWW-Authenticate"], "Token")

    def test_a_bearer_header_is_told_which_scheme_the_api_takes(self):
        response = self.client.get(reverse("detection_api:analyses"), HTTP_AUTHORIZATION=f"Bearer {self.alice_key}")

        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json(), {"detail": 'Send the token as "Authorization: Token <token>", not "Bearer <token>".', "code": "authentication_failed"})

    def test_a_user_name_and_password_are_told_the_api_takes_a_token(self):
        response = self.client.get(reverse("detection_api:analyses"), HTTP_AUTHORIZATION="Basic YWxpY2U6c2VjcmV0")

        self.assertEqual(response.status_code, 401)
        self.assertIn("This API takes a token, not a user name and password", response.json()["detail"])
        self.client.force_login(self.alice)  # a proxy's own Basic log-in in front of the site
        self.assertEqual(
            self.client.get(reverse("detection_api:analyses"), HTTP_AUTHORIZATION="Basic YWxpY2U6c2VjcmV0").status_code, 200
        )

    def test_it_answers_401_with_a_bad_token(self):
        response = self.client.get(reverse("detection_api:analyses"), **self.auth("0" * 40))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json(), {"detail": "Invalid token.", "code": "authentication_failed"})

    def test_every_analysis_endpoint_needs_a_valid_token(self):
        analysis = self.done_analysis_for(self.alice)
        face = analysis.frames.get().faces.get()
        endpoints = [
            ("get", reverse("detection_api:analyses")),
            ("post", reverse("detection_api:analyses")),
            ("get", reverse("detection_api:analysis-detail", args=[analysis.pk])),
            ("delete", reverse("detection_api:analysis-detail", args=[analysis.pk])),
            ("get", reverse("detection_api:analysis-file", args=[analysis.pk])),
            ("get", reverse("detection_api:analysis-heatmap", args=[analysis.pk, face.pk])),
            ("get", reverse("detection_api:analysis-thumbnail", args=[analysis.pk])),
            ("get", reverse("detection_api:analysis-frame-image", args=[analysis.pk, 0])),
        ]
        for method, url in endpoints:
            for headers in ({}, self.auth("f" * 40)):
                with self.subTest(method=method, url=url, token=bool(headers)):
                    response = getattr(self.client, method)(url, **headers)
                    self.assertEqual(response.status_code, 401)
                    self.assertIn("detail", response.json())
        self.assertTrue(Analysis.objects.filter(pk=analysis.pk).exists())

    def test_the_sites_own_pages_can_read_with_the_session(self):
        self.client.force_login(self.bob)
        url = reverse("detection_api:analysis-detail", args=[self.bobs_analysis.pk])

        response = self.client.get(url)

        self.assertEqual(response.json()["status"], "queued")

    def test_a_session_write_needs_the_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.bob)

        response = client.delete(reverse("detection_api:analysis-detail", args=[self.bobs_analysis.pk]))

        self.assertEqual(response.status_code, 403)
        self.assertIn("CSRF", response.json()["detail"])
        self.assertTrue(Analysis.objects.filter(pk=self.bobs_analysis.pk).exists())


class AnalysisCreateApiTests(ApiTestCase):
    def test_it_accepts_a_photo_and_answers_202_with_the_queued_analysis(self):
        response = self.upload(photo_upload())

        self.assertEqual(response.status_code, 202)
        body = response.json()
        analysis = Analysis.objects.get(owner=self.alice)
        self.assertEqual(body["id"], str(analysis.pk))
        self.assertEqual(body["status"], "queued")
        self.assertEqual(body["media_type"], "image")
        detail_url = "http://testserver" + reverse("detection_api:analysis-detail", args=[analysis.pk])
        self.assertEqual(body["url"], detail_url)
        self.assertEqual(response.headers["Location"], detail_url)

    def test_it_refuses_a_request_without_a_file(self):
        response = self.client.post(reverse("detection_api:analyses"), {}, **self.auth())

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["detail"], "file: No file was submitted.")
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_it_refuses_an_empty_file(self):
        response = self.upload(SimpleUploadedFile("empty.jpg", b""))
        self.assertEqual(response.status_code, 400)
        self.assertIn("empty", response.json()["detail"])

    def test_it_answers_413_for_an_oversize_file_and_stores_nothing(self):
        files_before = self.stored_files()
        with override_settings(DETECTION_MAX_UPLOAD_BYTES=2048):
            response = self.upload(photo_upload())

        self.assertEqual(response.status_code, 413)
        self.assertIn("The file is too large", response.json()["detail"])
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())
        self.assertEqual(self.stored_files(), files_before)

    def test_an_upload_past_the_accounts_storage_is_refused_with_507_and_the_room_left(self):
        kept = self.analysis_for(self.alice, status=Analysis.Status.DONE)
        files_before = self.stored_files()
        room = kept.size + len(astronaut_jpeg()) - 1  # one byte short for a second photo
        with override_settings(DETECTION_USER_STORAGE_BYTES=room):
            response = self.upload(photo_upload())

        self.assertEqual(response.status_code, 507)
        detail = response.json()["detail"]
        self.assertIn("Your analyses keep", detail)
        self.assertIn("Delete analyses you no longer need", detail)
        self.assertEqual(Analysis.objects.filter(owner=self.alice).count(), 1)
        self.assertEqual(self.stored_files(), files_before)

        kept.delete()  # deleting makes room
        with override_settings(DETECTION_USER_STORAGE_BYTES=room):
            self.assertEqual(self.upload(photo_upload()).status_code, 202)

    def test_the_upload_answer_says_how_much_room_the_account_now_uses(self):
        kept = self.analysis_for(self.alice, content=b"x" * 1536, status=Analysis.Status.DONE)
        self.analysis_for(self.bob, content=b"x" * 4096)  # not hers

        response = self.upload(photo_upload())

        self.assertEqual(response.status_code, 202)
        self.assertEqual(response.json()["account_stored_bytes"], kept.size + len(astronaut_jpeg()))

    def test_another_users_files_take_none_of_an_accounts_room(self):
        self.analysis_for(self.bob, content=astronaut_jpeg() * 4)
        with override_settings(DETECTION_USER_STORAGE_BYTES=len(astronaut_jpeg())):
            self.assertEqual(self.upload(photo_upload()).status_code, 202)

    def test_an_account_with_too_many_analyses_waiting_is_told_to_wait_for_them(self):
        self.analysis_for(self.alice)  # queued
        self.analysis_for(self.alice, status=Analysis.Status.RUNNING)
        self.analysis_for(self.alice, status=Analysis.Status.DONE)
        with override_settings(DETECTION_USER_PENDING=2):
            refused = self.upload(photo_upload())
            self.assertEqual(refused.status_code, 429)
            self.assertIn("You have 2 analyses waiting or running", refused.json()["detail"])
            self.assertEqual(Analysis.objects.filter(owner=self.alice).count(), 3)

            Analysis.objects.filter(owner=self.alice, status=Analysis.Status.RUNNING).update(status=Analysis.Status.FAILED)
            self.assertEqual(self.upload(photo_upload()).status_code, 202)

    def test_a_body_declared_over_the_limit_is_refused_before_a_byte_of_it_is_read(self):
        class Unreadable:
            def read(self, *args):
                raise AssertionError("the body was read")

            readline = read

        with override_settings(DETECTION_MAX_UPLOAD_BYTES=1024 * 1024):
            response = self.client.post(
                reverse("detection_api:analyses"),
                content_type="multipart/form-data; boundary=x",
                CONTENT_LENGTH=str(1024**3),
                **{"wsgi.input": Unreadable()},
                **self.auth(),
            )

        self.assertEqual(response.status_code, 413)
        self.assertEqual(response.json(), {"detail": "The file is too large; the limit is 1.0 MB.", "code": "too_large"})
        self.assertEqual(response.headers["Connection"], "close")

    def test_a_chunked_upload_is_told_to_send_a_length_not_that_no_file_came(self):
        response = self.client.post(
            reverse("detection_api:analyses"),
            content_type="multipart/form-data; boundary=x",
            HTTP_TRANSFER_ENCODING="chunked",
            **self.auth(),
        )

        self.assertEqual(response.status_code, 411)
        self.assertIn("Send the body with a Content-Length", response.json()["detail"])
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_reading_stops_once_the_file_passes_the_limit(self):
        received = []
        from deepfake_site.uploads import UploadLimitHandler

        original = UploadLimitHandler.receive_data_chunk

        def spy(handler, raw_data, start):
            received.append(len(raw_data))
            return original(handler, raw_data, start)

        big = SimpleUploadedFile("big.jpg", astronaut_jpeg() * 20, content_type="image/jpeg")
        before = (self.stored_files(), self.stored_folders())
        with (
            override_settings(DETECTION_MAX_UPLOAD_BYTES=2048, FILE_UPLOAD_MAX_MEMORY_SIZE=2048),
            mock.patch.object(UploadLimitHandler, "receive_data_chunk", spy),
            mock.patch.object(UploadLimitHandler, "chunk_size", 1024),
        ):
            response = self.upload(big)

        self.assertEqual(response.status_code, 413)
        self.assertIn("the limit is 0.0 MB", response.json()["detail"])
        self.assertLessEqual(sum(received), 3 * 1024)
        self.assertEqual((self.stored_files(), self.stored_folders()), before)

    def test_a_long_non_ascii_file_name_is_stored_within_the_file_systems_limit(self):
        for name in ["🙂" * 120 + ".jpg", "写真" * 150 + ".JPEG", "é" * 300 + "." + "ü" * 40]:
            with self.subTest(name=name[:10]):
                response = self.upload(SimpleUploadedFile(name, astronaut_jpeg()))

                self.assertEqual(response.status_code, 202, response.content[:200])
                analysis = Analysis.objects.get(pk=response.json()["id"])
                stored = Path(analysis.file.path)
                self.assertTrue(stored.is_file())
                self.assertLessEqual(len(stored.name.encode()), 120)
                self.assertEqual(analysis.original_name[:100], name[:100])  # shown as sent
                self.assertLessEqual(len(analysis.original_name), 255)

    def test_a_full_disk_answers_507_in_json_and_leaves_no_partial_file_or_folder(self):
        with disk_full(self.media_root, fail_on="analyses/"), self.assertLogs("detection.services", "ERROR"):
            response = self.upload(photo_upload())

        self.assertEqual(response.status_code, 507)
        self.assertIn("no room to store your file", response.json()["detail"])
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())
        bobs = Path(self.bobs_analysis.file.path)
        self.assertEqual(self.stored_files(), [bobs])
        self.assertEqual(self.stored_folders(), [bobs.parent.parent, bobs.parent])

    def test_an_unexpected_error_is_answered_in_json_and_logged(self):
        with (
            mock.patch("detection.services.analysis_create", side_effect=RuntimeError("boom")),
            self.assertLogs("deepfake_site.api", "ERROR") as logs,
            self.assertNoLogs("django.request", "ERROR"),  # once, not twice
        ):
            response = self.upload(photo_upload())

        self.assertEqual(response.status_code, 500)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertIn("Internal server error", response.json()["detail"])
        self.assertIn("RuntimeError: boom", "\n".join(logs.output))

    def test_an_unknown_api_address_is_answered_in_json(self):
        for debug in (False, True):  # with DEBUG on, Django's own 404 page would be HTML
            with self.subTest(debug=debug), override_settings(DEBUG=debug):
                for path in ("/api/v1/no-such-thing/", f"/api/v1/analyses/{self.bobs_analysis.pk}/no-such-thing/"):
                    response = self.get(path)

                    self.assertEqual(response.status_code, 404)
                    self.assertEqual(response.json(), {"detail": "No such API endpoint.", "code": "not_found"})

    def test_an_address_with_something_else_than_an_analysis_id_says_what_an_id_looks_like(self):
        for debug in (False, True):
            with self.subTest(debug=debug), override_settings(DEBUG=debug):
                response = self.get("/api/v1/analyses/my-photo.jpg/")

                self.assertEqual(response.status_code, 404)
                self.assertEqual(response["Content-Type"], "application/json")
                detail = response.json()["detail"]
                self.assertTrue(detail.startswith("No such analysis: 'my-photo.jpg' is not an analysis id."), detail)
                self.assertIn("Ids are UUIDs", detail)

    def test_an_analysis_id_in_capitals_is_shown_as_the_api_writes_it(self):
        analysis_id = "0f8fad5b-d9cb-469f-a165-70867728950e"
        response = self.get(f"/api/v1/analyses/{analysis_id.upper()}/file/")

        self.assertEqual(response.status_code, 404)
        self.assertIn(f"in lower case with hyphens: {analysis_id}.", response.json()["detail"])

    def test_an_upload_to_the_address_without_its_final_slash_is_refused_in_json_not_redirected(self):
        for debug in (False, True):  # a redirect loses the body; with DEBUG on Django raised
            with self.subTest(debug=debug), override_settings(DEBUG=debug):
                client = Client(enforce_csrf_checks=True)  # as a script's requests are checked
                response = client.post("/api/v1/analyses", {"file": photo_upload()}, **self.auth())

                self.assertEqual(response.status_code, 404)
                self.assertEqual(
                    response.json()["detail"],
                    "No such API endpoint. Did you mean /api/v1/analyses/ (API paths end with a slash)?",
                )
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_errors_are_json_even_for_a_client_that_asks_for_html(self):
        response = self.get(
            reverse("detection_api:analysis-detail", args=[self.bobs_analysis.pk]), HTTP_ACCEPT="text/html"
        )

        self.assertEqual(response.status_code, 404)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(response.json(), {"detail": "No such analysis.", "code": "not_found"})

    def test_two_files_in_one_request_are_refused_and_neither_is_stored(self):
        url = reverse("detection_api:analyses")
        response = self.client.post(url, {"file": [photo_upload("a.jpg"), photo_upload("b.jpg")]}, **self.auth())

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["detail"], "file: Send one file per request; this one had 2.")
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_a_name_with_quotes_or_line_breaks_as_browsers_send_it_is_stored_as_typed(self):
        for sent, stored in [
            ("réal photo %22quoted%22.jpg", 'réal photo "quoted".jpg'),
            ("two%0D%0Alines.jpg", "twolines.jpg"),  # as Django drops a CR or LF sent as it is
            ("100%25 %2F real%20name.jpg", "100%25 %2F real%20name.jpg"),  # the name's own
        ]:
            with self.subTest(sent=sent):
                response = self.upload(SimpleUploadedFile(sent, astronaut_jpeg()))

                self.assertEqual(Analysis.objects.get(pk=response.json()["id"]).original_name, stored)

    def test_a_body_that_is_not_multipart_is_told_how_to_send_the_file(self):
        url = reverse("detection_api:analyses")
        for content_type, body in [
            ("application/json", '{"file": "photo.jpg"}'),
            ("image/jpeg", astronaut_jpeg()),
            ("application/x-www-form-urlencoded", "file=photo.jpg"),
        ]:
            with self.subTest(content_type=content_type):
                response = self.client.post(url, body, content_type=content_type, **self.auth())

                self.assertEqual(response.status_code, 415)
                self.assertEqual(
                    response.json()["detail"],
                    f'Unsupported media type "{content_type}" in request. Send the file as '
                    "multipart/form-data in a field named `file` (curl -F file=@photo.jpg).",
                )
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_a_multipart_body_without_a_boundary_gets_a_400_with_empty_errors(self):
        url = reverse("detection_api:analyses")
        response = self.client.post(url, b"--x\r\n", content_type="multipart/form-data", **self.auth())

        self.assertEqual(response.status_code, 400)
        self.assertTrue(response.json()["detail"].startswith("Multipart form parse error"), response.json())
        self.assertEqual(response.json()["errors"], {})

    def send_suspicious_multipart(self, url):
        from django.core.exceptions import SuspiciousMultipartForm

        with mock.patch("django.http.multipartparser.MultiPartParser.parse", side_effect=SuspiciousMultipartForm("loop")):
            return self.client.post(url, {"file": photo_upload()}, **self.auth())

    def test_a_request_django_refuses_to_read_is_a_400_in_json_not_a_500(self):
        url = reverse("detection_api:analyses")
        many_fields = "&".join(f"f{k}=1" for k in range(1001))
        too_many_files = {f"file{k}": SimpleUploadedFile(f"{k}.jpg", b"x") for k in range(101)}
        for name, send, words in [
            ("fields in the query", lambda: self.get(f"{url}?{many_fields}"), "more than 1000 fields"),
            ("fields in a token log-in", lambda: self.client.post("/api/v1/auth/token/", many_fields, content_type="application/x-www-form-urlencoded"), "more than 1000 fields"),
            ("files", lambda: self.client.post(url, too_many_files, **self.auth()), "more than 100 files"),
            ("a large field", lambda: self.client.post(url, {"note": "x" * 3_000_000}, **self.auth()), "file left aside"),
            ("a looping multipart body", lambda: self.send_suspicious_multipart(url), "could not be read"),
        ]:
            with self.subTest(name), override_settings(DEBUG=False), self.assertLogs("django.security", "WARNING"):
                response = send()

                self.assertEqual(response.status_code, 400, response.content[:300])
                self.assertIn(words, response.json()["detail"])
                self.assertEqual(response.json()["errors"], {})
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_a_name_cut_to_fit_keeps_its_extension(self):
        response = self.upload(SimpleUploadedFile("a" * 400 + ".jpg", astronaut_jpeg()))

        name = Analysis.objects.get(pk=response.json()["id"]).original_name
        self.assertEqual(len(name), 255)
        self.assertTrue(name.endswith("a.jpg"))

    def test_it_answers_415_for_a_file_that_is_not_an_image_or_video(self):
        files_before = self.stored_files()

        response = self.upload(text_upload())

        self.assertEqual(response.status_code, 415)
        self.assertEqual(
            response.json()["detail"],
            "This file is named like a photo, but its content is not one the site can read: it may be "
            f"damaged, or another kind of file renamed. Upload {services.SUPPORTED_FORMATS}.",
        )
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())
        self.assertEqual(self.stored_files(), files_before)
        other = self.upload(text_upload("notes.txt"))
        self.assertEqual(other.json()["detail"], f"This file is not a supported type. Upload {services.SUPPORTED_FORMATS}.")

    def test_it_answers_415_for_a_heic_photo_with_what_to_do_instead(self):
        response = self.upload(heic_upload())

        self.assertEqual(response.status_code, 415)
        self.assertIn("HEIC/HEIF photos are not supported", response.json()["detail"])
        self.assertIn("JPEG", response.json()["detail"])
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_it_refuses_a_wait_over_thirty_seconds(self):
        response = self.upload(photo_upload(), query="?wait=31")

        self.assertEqual(response.status_code, 400)
        self.assertIn("wait", response.json()["errors"])
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_it_refuses_a_misspelt_or_repeated_wait_rather_than_answering_at_once(self):
        misspelt = self.upload(photo_upload(), query="?wiat=30")
        repeated = self.upload(photo_upload(), query="?wait=1&wait=2")

        self.assertEqual(misspelt.status_code, 400)
        self.assertEqual(
            misspelt.json()["errors"]["wiat"], ["Not a parameter of an upload or a run again, which takes: wait."]
        )
        self.assertEqual(repeated.json()["errors"]["wait"], ["Give it once."])
        self.assertFalse(Analysis.objects.filter(owner=self.alice).exists())

    def test_each_refusal_names_its_kind_in_a_code_a_script_can_test(self):
        """Two 429s and two 507s differ only in their words otherwise."""
        with override_settings(DETECTION_USER_STORAGE_BYTES=10), throttle_rates(uploads="1/hour"):
            quota = self.upload(photo_upload())
        with override_settings(DETECTION_USER_PENDING=1):
            self.upload(photo_upload())
            pending = self.upload(photo_upload())
        Analysis.objects.filter(owner=self.alice).delete()
        with throttle_rates(uploads="1/hour"):
            rate = self.upload(photo_upload())
        codes = {
            "quota": quota.json()["code"],
            "pending": pending.json()["code"],
            "rate": rate.json()["code"],
            "type": self.upload(text_upload()).json()["code"],
            "wait": self.upload(photo_upload(), query="?wait=31").json()["code"],
            "anonymous": self.client.get(reverse("detection_api:analyses")).json()["code"],
        }

        self.assertEqual((quota.status_code, pending.status_code, rate.status_code), (507, 429, 429))
        self.assertIn("You have 1 analysis waiting or running", pending.json()["detail"])
        self.assertEqual(
            codes,
            {
                "quota": "quota_exceeded",
                "pending": "too_many_pending",
                "rate": "upload_rate_limited",
                "type": "unsupported_type",
                "wait": "invalid",
                "anonymous": "not_authenticated",
            },
        )

    def test_it_throttles_uploads_per_user_but_not_reading(self):
        with throttle_rates(uploads="2/minute"):
            statuses = [self.upload(photo_upload()).status_code for _ in range(3)]
            listing = self.get(reverse("detection_api:analyses"))
            bobs_upload = self.upload(photo_upload(), **self.auth(self.bob_key))

        self.assertEqual(statuses, [202, 202, 429])
        self.assertEqual(Analysis.objects.filter(owner=self.alice).count(), 2)
        self.assertEqual(listing.status_code, 200)
        self.assertEqual(bobs_upload.status_code, 202)

    def test_refused_uploads_do_not_use_up_the_upload_limit(self):
        with throttle_rates(uploads="1/hour"):
            refused = [
                self.upload(text_upload()).status_code,
                self.upload(SimpleUploadedFile("empty.jpg", b"")).status_code,
                self.upload(photo_upload(), query="?wait=abc").status_code,
            ]
            accepted = self.upload(photo_upload())
            over = self.upload(photo_upload())

        self.assertEqual(refused, [415, 400, 400])
        self.assertEqual(accepted.status_code, 202)
        self.assertEqual(over.status_code, 429)

    def test_a_new_account_with_an_old_accounts_number_starts_with_its_own_upload_count(self):
        with throttle_rates(uploads="1/hour"):
            self.assertEqual(self.upload(photo_upload()).status_code, 202)
            number = self.alice.pk
            self.alice.delete()  # as on a fresh database, where numbering starts again
            newcomer = User.objects.create_user(pk=number, username="carol", password="pw-carol-123")
            first = self.upload(photo_upload(), **self.auth(api_token_create(user=newcomer)[1]))

        self.assertEqual(first.status_code, 202)

    def test_a_refused_upload_says_the_limit_and_when_to_try_again_in_words(self):
        with throttle_rates(uploads="1/hour"):
            self.upload(photo_upload())
            refused = self.upload(photo_upload())

        self.assertEqual(refused.status_code, 429)
        detail = refused.json()["detail"]
        self.assertRegex(detail, r"^You have reached the upload limit of 1 file an hour\. Try again in (59|60) minutes\.$")
        self.assertIn(int(refused["Retry-After"]), range(3500, 3601))

    def test_past_the_limit_by_more_than_one_upload_the_wait_is_until_the_count_falls_under_it(self):
        # uploads sent at once can all pass the check before any is counted, and a rate can be
        # lowered while the site runs: either way more are counted than the rate allows
        with throttle_rates(uploads="5/hour"):
            for _ in range(4):
                self.upload(photo_upload())
        with throttle_rates(uploads="2/hour"):
            refused = self.upload(photo_upload())

        self.assertEqual(refused.status_code, 429)
        self.assertIn(int(refused["Retry-After"]), range(3500, 3601))
        self.assertRegex(refused.json()["detail"], r"Try again in (59|60) minutes\.$")

    def test_a_wait_that_runs_out_answers_202_with_the_analysis_still_queued(self):
        clock = itertools.count(start=0.0, step=1.0)
        with (
            mock.patch("detection.wait.monotonic", side_effect=lambda: next(clock)),
            mock.patch.object(DatabaseWatch, "wait", return_value=False) as wait,
        ):
            response = self.upload(photo_upload(), query="?wait=5")

        self.assertEqual(response.status_code, 202)
        self.assertEqual(response.json()["status"], "queued")
        self.assertTrue(wait.called)
        self.assertLessEqual(sum(call.args[1] for call in wait.call_args_list), 5)


    def test_a_user_whose_waits_fill_their_share_gets_an_answer_at_once_and_others_still_wait(self):
        bob = self.auth(self.bob_key)
        clock = itertools.count(start=0.0, step=1.0)
        with (
            override_settings(API_WAITS_PER_USER=2, API_WAIT_SLOTS=6),
            wait._wait_slot(self.alice),
            wait._wait_slot(self.alice),  # two of alice's uploads are waiting already
            mock.patch("detection.wait.monotonic", side_effect=lambda: next(clock)),
            mock.patch.object(DatabaseWatch, "wait", return_value=False) as watched,
        ):
            third = self.upload(photo_upload(), query="?wait=30")
            self.assertFalse(watched.called)
            bobs = self.upload(photo_upload(), query="?wait=3", **bob)

        self.assertEqual((third.status_code, third.json()["status"]), (202, "queued"))
        self.assertEqual(bobs.status_code, 202)
        self.assertTrue(watched.called)  # bob's upload waited

    def test_waits_leave_the_process_threads_for_everyone_else(self):
        with (
            override_settings(API_WAITS_PER_USER=2, API_WAIT_SLOTS=1),
            wait._wait_slot(self.bob),  # the process's only wait slot is taken
            mock.patch.object(DatabaseWatch, "wait", return_value=False) as watched,
        ):
            response = self.upload(photo_upload(), query="?wait=30")

        self.assertEqual(response.status_code, 202)
        self.assertFalse(watched.called)
        with override_settings(API_WAIT_SLOTS=1):  # free again once bob's wait ended
            with wait._wait_slot(self.alice) as granted:
                self.assertTrue(granted)


class AnalysisWaitPipelineTests(PipelineTestCase, ApiTestCase):
    def test_a_wait_holds_the_answer_until_the_worker_is_done(self):
        def worker_finishes(mark, seconds):
            for pk in Analysis.objects.filter(status="queued").values_list("pk", flat=True):
                services.analysis_run(analysis_id=pk)
            return True  # the database changed: the waiting request reads again at once

        clock = itertools.count(start=0.0, step=0.001)
        with (
            mock.patch("detection.wait.monotonic", side_effect=lambda: next(clock)),
            mock.patch.object(DatabaseWatch, "wait", side_effect=worker_finishes) as wait,
        ):
            response = self.upload(photo_upload(), query="?wait=30")

        wait.assert_called_once()  # one wait, ended by the worker's write, not by the 30 s
        self.assertEqual(response.status_code, 201)
        body = response.json()
        self.assertEqual(body["status"], "done", body["error"])
        self.assertIn(body["verdict"], {"real", "fake"})
        self.assertGreater(len(body["frames"][0]["faces"]), 0)

    def test_a_rerun_with_wait_answers_200_with_the_new_result_once_the_worker_is_done(self):
        with self.captureOnCommitCallbacks(execute=True):
            first = self.upload(photo_upload())
        analysis_id = first.json()["id"]
        self.assertEqual(self.get(first.json()["url"]).json()["status"], "done")

        def worker_finishes(mark, seconds):
            for pk in Analysis.objects.filter(status="queued").values_list("pk", flat=True):
                services.analysis_run(analysis_id=pk)
            return True

        clock = itertools.count(start=0.0, step=0.001)
        with (
            mock.patch("detection.services.analysis_enqueue"),  # the worker is the watch below
            mock.patch("detection.wait.monotonic", side_effect=lambda: next(clock)),
            mock.patch.object(DatabaseWatch, "wait", side_effect=worker_finishes),
        ):
            again = self.client.post(
                reverse("detection_api:analysis-rerun", args=[analysis_id]) + "?wait=30", **self.auth()
            )

        self.assertEqual(again.status_code, 200)
        self.assertEqual(again.json()["status"], "done", again.json()["error"])
        self.assertGreater(len(again.json()["frames"][0]["faces"]), 0)

    def test_token_upload_poll_result_and_delete(self):
        """The whole life of an analysis as a script sees it, with the real detector."""
        token = self.client.post(
            reverse("accounts_api:token"), {"username": "alice", "password": "correct horse battery staple"}
        ).json()["token"]
        headers = {"HTTP_AUTHORIZATION": f"Token {token}"}

        with self.captureOnCommitCallbacks(execute=True):  # the worker runs when the upload commits
            created = self.client.post(reverse("detection_api:analyses"), {"file": video_upload()}, **headers)
        self.assertEqual(created.status_code, 202)
        self.assertEqual(created.json()["status"], "queued")

        result = self.client.get(created.json()["url"], **headers).json()
        self.assertEqual(result["status"], "done", result["error"])
        self.assertEqual(result["media_type"], "video")
        self.assertIn(result["verdict"], {"real", "fake"})
        self.assertEqual(result["progress"], 1.0)
        self.assertEqual(result["error"], "")
        self.assertEqual(len(result["frames"]), result["frames_analysed"])
        self.assertGreater(len(result["frames"]), 1)
        faces = [face for frame in result["frames"] for face in frame["faces"]]
        self.assertEqual(len(faces), result["faces_count"])
        self.assertGreater(len(faces), 0)
        self.assertEqual(len(faces[0]["box"]), 4)
        heatmaps = [face["heatmap_url"] for face in faces if face["heatmap_url"]]
        self.assertGreater(len(heatmaps), 0)
        heatmap = self.client.get(heatmaps[0], **headers)
        self.assertEqual(heatmap.headers["Content-Type"], "image/png")
        self.assertTrue(b"".join(heatmap.streaming_content).startswith(b"\x89PNG"))
        self.assertTrue(result["model"]["name"])
        self.assertGreaterEqual(set(result["timings"]), {"decode", "faces", "classify"})

        with self.captureOnCommitCallbacks(execute=True):
            deleted = self.client.delete(created.json()["url"], **headers)
        self.assertEqual(deleted.status_code, 204)
        self.assertEqual(self.client.get(created.json()["url"], **headers).status_code, 404)
        folder = created.json()["id"].replace("-", "")
        self.assertEqual([p for p in self.stored_files() if folder in str(p)], [])


class AnalysisListApiTests(ApiTestCase):
    url = reverse("detection_api:analyses")

    def test_it_lists_only_the_users_own_analyses(self):
        mine = self.analysis_for(self.alice)

        response = self.get(self.url)

        self.assertEqual(response.status_code, 200)
        self.assertEqual([a["id"] for a in response.json()["results"]], [str(mine.pk)])

    def test_each_row_says_what_kind_of_fake_and_both_probabilities(self):
        self.done_analysis_for(
            self.alice, fake_kind="ai_generated", fake_probability=0.0001, synthetic_probability=0.99
        )

        row = self.get(self.url).json()["results"][0]

        self.assertEqual(
            (row["verdict"], row["fake_kind"], row["fake_probability"], row["synthetic_probability"]),
            ("fake", "ai_generated", 0.0001, 0.99),
        )

    def test_a_verdict_held_at_uncertain_says_why_and_one_left_to_its_score_says_nothing(self):
        held = self.done_analysis_for(
            self.alice, verdict="uncertain", fake_kind="", fake_probability=0.31, uncertain_reason="few_frames"
        )
        plain = self.done_analysis_for(self.alice)

        rows = {row["id"]: row for row in self.get(self.url).json()["results"]}
        detail = self.get(reverse("detection_api:analysis-detail", args=[held.pk])).json()

        self.assertEqual((rows[str(held.pk)]["verdict"], rows[str(held.pk)]["uncertain_reason"]), ("uncertain", "few_frames"))
        self.assertEqual(rows[str(plain.pk)]["uncertain_reason"], "")
        self.assertEqual(detail["uncertain_reason"], "few_frames")

    def test_it_pages_by_twenty(self):
        for _ in range(21):
            self.analysis_for(self.alice)

        first = self.get(self.url).json()
        second = self.get(first["next"]).json()

        self.assertEqual(first["count"], 21)
        self.assertEqual(len(first["results"]), 20)
        self.assertIsNone(first["previous"])
        self.assertEqual(len(second["results"]), 1)
        self.assertIsNone(second["next"])
        self.assertEqual(len({a["id"] for a in first["results"] + second["results"]}), 21)

    def test_a_script_deleting_what_it_reads_page_by_page_reads_every_analysis_once_by_cursor(self):
        made = {str(self.analysis_for(self.alice).pk) for _ in range(45)}
        self.analysis_for(self.bob)

        seen, url, counts = [], self.url + "?cursor=", []
        while url:
            page = self.get(url).json()
            counts.append(page["count"])
            seen += [item["id"] for item in page["results"]]
            for item in page["results"]:
                self.assertEqual(self.client.delete(item["url"], **self.auth()).status_code, 204)
            url = page["next"]

        self.assertEqual(sorted(seen), sorted(made))  # every one once; numbered pages skipped 20 of them
        self.assertEqual(counts, [45, 25, 5])

    def test_a_cursor_walk_keeps_the_filters_and_the_order_asked_for(self):
        first = self.analysis_for(self.alice, media_type=Analysis.MediaType.VIDEO)
        self.analysis_for(self.alice)
        later = [self.analysis_for(self.alice, media_type=Analysis.MediaType.VIDEO) for _ in range(21)]

        page = self.get(self.url, {"cursor": "", "media_type": "video", "ordering": "created_at"}).json()
        rest = self.get(page["next"]).json()

        self.assertEqual([item["id"] for item in page["results"] + rest["results"]], [str(a.pk) for a in [first, *later]])
        self.assertIn("media_type=video", page["next"])
        self.assertIsNone(rest["next"])

    def test_a_page_with_a_cursor_or_a_cursor_the_list_never_gave_is_refused(self):
        self.analysis_for(self.alice)

        both = self.get(self.url, {"cursor": "", "page": 1})
        made_up = self.get(self.url, {"cursor": "not-a-cursor"})

        self.assertEqual((both.status_code, both.json()["code"]), (400, "invalid"))
        self.assertEqual(both.json()["errors"]["cursor"], ["Give page or cursor, not both."])
        self.assertEqual(made_up.status_code, 400)
        self.assertIn("Not a cursor this list gave", made_up.json()["errors"]["cursor"][0])
        for position in ("garbage", "2026-13-45"):  # well-formed cursors holding no upload time
            forged = base64.b64encode(urlencode({"p": position}).encode()).decode()
            with self.subTest(position=position):
                response = self.get(self.url, {"cursor": forged})
                self.assertEqual((response.status_code, response.json()["code"]), (400, "invalid"))

    def test_it_answers_404_for_a_page_past_the_end_and_says_how_many_there_are(self):
        self.analysis_for(self.alice)

        response = self.get(self.url, {"page": 2})

        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json()["detail"], "There is no page 2: the list has 1 page of at most 20.")

    def test_a_page_number_not_in_digits_is_refused_as_invalid_not_missing(self):
        for page in ("1.0", "abc", "0", "-1"):
            with self.subTest(page=page):
                response = self.get(self.url, {"page": page})

                self.assertEqual(response.status_code, 400)
                self.assertIn("page", response.json()["errors"])
                if page != "0":
                    self.assertEqual(response.json()["errors"]["page"], ["A page number is a whole number from 1."])

    def test_it_searches_by_file_name_and_upload_day(self):
        holiday = self.analysis_for(self.alice, original_name="Holiday ÉTÉ.jpg")
        other = self.analysis_for(self.alice, original_name="interview.mp4")
        Analysis.objects.filter(pk=other.pk).update(created_at=other.created_at.replace(year=2020, month=3, day=1))

        def ids(**filters):
            response = self.get(self.url, filters)
            self.assertEqual(response.status_code, 200, response.json())
            return [a["id"] for a in response.json()["results"]]

        self.assertEqual(ids(name="holiday été"), [str(holiday.pk)])
        self.assertEqual(ids(uploaded_to="2020-03-01"), [str(other.pk)])
        self.assertEqual(ids(uploaded_from="2020-03-02"), [str(holiday.pk)])
        self.assertEqual(self.get(self.url, {"uploaded_from": "2020-03-02", "uploaded_to": "2020-03-01"}).status_code, 400)

    def test_an_unknown_or_repeated_parameter_is_refused_rather_than_ignored(self):
        self.analysis_for(self.alice, original_name="keep me.jpg")

        unknown = self.get(self.url, {"q": "nothing like it"})  # the web history's name, not the API's
        repeated = self.get(self.url + "?status=done&status=failed")

        self.assertEqual(unknown.status_code, 400)
        self.assertIn("Not a parameter of this list, which takes: status, verdict", unknown.json()["errors"]["q"][0])
        self.assertEqual(repeated.status_code, 400)
        self.assertEqual(repeated.json()["errors"]["status"], ["Give it once."])

    def test_it_filters_by_status_verdict_and_media_type(self):
        fake_photo = self.done_analysis_for(self.alice)
        real_video = self.done_analysis_for(
            self.alice, verdict="real", fake_probability=0.2, media_type="video"
        )
        queued = self.analysis_for(self.alice)

        def ids(**filters):
            return [a["id"] for a in self.get(self.url, filters).json()["results"]]

        self.assertEqual(ids(status="queued"), [str(queued.pk)])
        self.assertEqual(ids(verdict="fake"), [str(fake_photo.pk)])
        self.assertEqual(ids(media_type="video"), [str(real_video.pk)])
        self.assertEqual(ids(status="done", verdict="real"), [str(real_video.pk)])

    def test_it_lists_the_verdicts_held_at_uncertain_by_their_reason_or_all_of_them(self):
        held = lambda reason: dict(verdict="uncertain", fake_probability=0.3, uncertain_reason=reason)  # noqa: E731
        brief = self.done_analysis_for(self.alice, media_type="video", **held("few_frames"))
        moments = self.done_analysis_for(self.alice, media_type="video", **held("fake_moments"))
        self.done_analysis_for(self.alice, verdict="uncertain", fake_probability=0.6)  # by its score: not held
        self.done_analysis_for(self.alice)  # a fake
        self.done_analysis_for(self.bob, media_type="video", **held("few_frames"))

        def ids(**filters):
            return sorted(a["id"] for a in self.get(self.url, filters).json()["results"])

        self.assertEqual(ids(uncertain_reason="few_frames"), [str(brief.pk)])
        self.assertEqual(ids(uncertain_reason="any"), sorted([str(brief.pk), str(moments.pk)]))
        self.assertEqual(ids(uncertain_reason="any", verdict="fake"), [])
        self.assertEqual(self.get(self.url, {"uncertain_reason": "because"}).status_code, 400)

    def test_it_orders_by_upload_time(self):
        first = self.analysis_for(self.alice)
        second = self.analysis_for(self.alice)
        Analysis.objects.filter(pk=first.pk).update(created_at=second.created_at.replace(year=2020))

        newest_first = [a["id"] for a in self.get(self.url).json()["results"]]
        oldest_first = [a["id"] for a in self.get(self.url, {"ordering": "created_at"}).json()["results"]]

        self.assertEqual(newest_first, [str(second.pk), str(first.pk)])
        self.assertEqual(oldest_first, [str(first.pk), str(second.pk)])

    def test_it_finds_the_earlier_analyses_of_the_same_file_by_its_sha256(self):
        uploaded = self.upload(photo_upload("first.jpg")).json()
        self.upload(photo_upload("same bytes.jpg"))
        self.analysis_for(self.alice, sha256="1" * 64)
        bobs = self.analysis_for(self.bob, sha256=uploaded["sha256"])

        found = self.get(self.url, {"sha256": uploaded["sha256"].upper()}).json()["results"]
        wrong = self.get(self.url, {"sha256": "abc"})

        self.assertEqual(len(uploaded["sha256"]), 64)
        self.assertEqual(sorted(a["original_name"] for a in found), ["first.jpg", "same bytes.jpg"])
        self.assertNotIn(str(bobs.pk), [a["id"] for a in found])
        self.assertEqual(wrong.json()["errors"]["sha256"], ["A SHA-256 digest is 64 hexadecimal digits."])

    def test_it_refuses_an_unknown_filter_value(self):
        response = self.get(self.url, {"status": "sleeping"})

        self.assertEqual(response.status_code, 400)
        self.assertIn('status: "sleeping" is not a valid choice.', response.json()["detail"])


class AnalysisDetailApiTests(ApiTestCase):
    def test_a_queued_analysis_says_its_place_in_the_queue_and_when_no_worker_is_up(self):
        older = self.bobs_analysis  # queued before: everyone's uploads count
        analysis = self.analysis_for(self.alice, original_name="second.jpg")
        url = reverse("detection_api:analysis-detail", args=[analysis.pk])
        self.enterContext(mock.patch("detection.workers.CLUSTERS_SEEN_FOR_SECONDS", 0))  # read each time

        with mock.patch("detection.workers.Stat.get_all", return_value=[]):
            just_queued = self.get(url).json()
            Analysis.objects.filter(pk=older.pk).update(enqueued_at=timezone.now() - timedelta(minutes=3))
            Analysis.objects.filter(pk=analysis.pk).update(enqueued_at=timezone.now() - timedelta(minutes=2))
            waited = self.get(url).json()
        Analysis.objects.filter(pk=older.pk).update(status=Analysis.Status.RUNNING)
        with mock.patch("detection.workers.Stat.get_all", return_value=[object()]):  # a cluster is up
            next_up = self.get(url).json()
        done = self.get(reverse("detection_api:analysis-detail", args=[self.done_analysis_for(self.alice).pk])).json()

        self.assertEqual((just_queued["queue_position"], just_queued["no_worker"]), (2, False))  # a worker may be starting
        self.assertEqual((waited["queue_position"], waited["no_worker"]), (2, True))
        self.assertEqual((next_up["queue_position"], next_up["no_worker"]), (1, False))
        self.assertEqual((done["queue_position"], done["no_worker"]), (None, False))

    def test_it_returns_the_full_result(self):
        analysis = self.done_analysis_for(self.alice)
        face = analysis.frames.get().faces.get()

        body = self.get(reverse("detection_api:analysis-detail", args=[analysis.pk])).json()

        self.assertEqual(body["status"], "done")
        self.assertEqual(body["verdict"], "fake")
        self.assertEqual(body["fake_probability"], 0.91)
        self.assertEqual(body["threshold"], 0.5)
        self.assertEqual(
            (body["fake_kind"], body["synthetic_probability"], body["synthetic_threshold"], body["synthetic_model_version"]),
            ("face_swap", 0.02, 0.7, "s1"),
        )
        self.assertEqual(body["model"], {"name": "test-model", "version": "1"})
        self.assertEqual(body["timings"], {"decode": 0.01, "faces": 0.02})
        self.assertEqual(
            body["frames"],
            [
                {
                    "index": 0,
                    "time": 0.0,
                    "fake_probability": 0.91,
                    "faces_left_out": 0,
                    "boxes_rejected": 0,
                    "image_url": "http://testserver"
                    + reverse("detection_api:analysis-frame-image", args=[analysis.pk, 0]),
                    "faces": [
                        {
                            "id": face.pk,
                            "index": 0,
                            "box": [80, 40, 100, 100],
                            "crop": None,
                            "crop_angle": 0.0,
                            "fake_probability": 0.91,
                            "synthetic_probability": 0.02,
                            "track": 1,
                            "heatmap_url": "http://testserver"
                            + reverse("detection_api:analysis-heatmap", args=[analysis.pk, face.pk]),
                            "heatmap_focus": "",  # made before it was recorded
                        }
                    ],
                }
            ],
        )
        self.assertEqual(
            body["tracks"],
            [
                {
                    "number": 1,
                    "fake_probability": 0.91,
                    "synthetic_probability": 0.02,
                    "frames": 1,
                    "first_time": 0.0,
                    "last_time": 0.0,
                    "counted": True,
                }
            ],
        )
        self.assertEqual(
            body["file_url"], "http://testserver" + reverse("detection_api:analysis-file", args=[analysis.pk])
        )
        self.assertEqual(
            body["thumbnail_url"],
            "http://testserver" + reverse("detection_api:analysis-thumbnail", args=[analysis.pk]),
        )

    def test_it_shows_why_an_analysis_failed(self):
        analysis = self.analysis_for(self.alice, status="failed", error="photo.jpg: cannot decode")
        body = self.get(reverse("detection_api:analysis-detail", args=[analysis.pk])).json()
        self.assertEqual(
            (body["status"], body["error"], body["verdict"]),
            ("failed", "photo.jpg: cannot decode", ""),
        )

    def test_it_answers_404_for_another_users_analysis(self):
        response = self.get(reverse("detection_api:analysis-detail", args=[self.bobs_analysis.pk]))

        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"detail": "No such analysis.", "code": "not_found"})


class AnalysisDeleteApiTests(ApiTestCase):
    def test_it_deletes_the_analysis_and_its_files(self):
        analysis = self.done_analysis_for(self.alice)
        paths = [p for p in self.stored_files() if analysis.pk.hex in str(p)]

        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.delete(reverse("detection_api:analysis-detail", args=[analysis.pk]), **self.auth())

        self.assertEqual(response.status_code, 204)
        self.assertFalse(Analysis.objects.filter(pk=analysis.pk).exists())
        self.assertEqual(len(paths), 4)  # upload, thumbnail, photo, heatmap
        self.assertFalse(any(p.exists() for p in paths))

    def test_it_answers_404_for_another_users_analysis_and_keeps_it(self):
        response = self.client.delete(
            reverse("detection_api:analysis-detail", args=[self.bobs_analysis.pk]), **self.auth()
        )

        self.assertEqual(response.status_code, 404)
        self.assertTrue(Analysis.objects.filter(pk=self.bobs_analysis.pk).exists())

    def test_it_needs_a_token(self):
        response = self.client.delete(reverse("detection_api:analysis-detail", args=[self.bobs_analysis.pk]))
        self.assertEqual(response.status_code, 401)


class AnalysisRerunApiTests(ApiTestCase):
    def rerun(self, analysis, token: str | None = None):
        with mock.patch("detection.services.analysis_enqueue") as enqueue, self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("detection_api:analysis-rerun", args=[analysis.pk]), **self.auth(token))
        return response, enqueue

    def test_a_finished_analysis_is_queued_again_and_its_address_given(self):
        done = self.done_analysis_for(self.alice)

        response, enqueue = self.rerun(done)

        self.assertEqual(response.status_code, 202)
        self.assertEqual((response.json()["status"], response.json()["verdict"], response.json()["frames"]), ("queued", "", []))
        self.assertEqual(response.headers["Location"], response.json()["url"])
        enqueue.assert_called_once_with(analysis_id=done.pk)

    def test_one_still_waiting_gets_409(self):
        response, enqueue = self.rerun(self.analysis_for(self.alice))

        self.assertEqual(response.status_code, 409)
        self.assertIn("still waiting or running", response.json()["detail"])
        enqueue.assert_not_called()

    def test_one_that_failed_on_its_file_itself_gets_409_and_uses_up_no_upload(self):
        unreadable = self.analysis_for(
            self.alice, status=Analysis.Status.FAILED, error="cannot decode the image", file_unreadable=True
        )
        detail = self.get(reverse("detection_api:analysis-detail", args=[unreadable.pk]))

        with throttle_rates(uploads="1/hour"):
            response, enqueue = self.rerun(unreadable)
            upload = self.upload(photo_upload())

        self.assertIs(detail.json()["file_unreadable"], True)
        self.assertEqual(response.status_code, 409)
        self.assertIn("because of the file itself", response.json()["detail"])
        enqueue.assert_not_called()
        self.assertEqual(upload.status_code, 202)

    def test_anothers_analysis_is_not_found(self):
        response, enqueue = self.rerun(self.bobs_analysis)
        self.assertEqual(response.status_code, 404)
        enqueue.assert_not_called()

    @override_settings(DETECTION_USER_PENDING=1)
    def test_past_the_pending_limit_it_gets_429(self):
        self.analysis_for(self.alice)
        response, _ = self.rerun(self.analysis_for(self.alice, status=Analysis.Status.FAILED))
        self.assertEqual(response.status_code, 429)

    def test_it_counts_in_the_upload_rate_with_uploads(self):
        with throttle_rates(uploads="1/hour"):
            self.assertEqual(self.rerun(self.done_analysis_for(self.alice))[0].status_code, 202)
            response = self.upload(photo_upload())

        self.assertEqual(response.status_code, 429)
        self.assertIn("Retry-After", response.headers)


class AnalysisFileApiTests(ApiTestCase):
    def test_it_sends_the_original_to_its_owner(self):
        analysis = self.analysis_for(
            self.alice, content=b"\xff\xd8\xff original bytes", original_name="me.jpg"
        )

        response = self.get(reverse("detection_api:analysis-file", args=[analysis.pk]))

        self.assertEqual(response.status_code, 200)
        self.assertEqual(b"".join(response.streaming_content), b"\xff\xd8\xff original bytes")
        self.assertEqual(response.headers["Content-Disposition"], 'attachment; filename="me.jpg"')
        self.assertEqual(set(response.headers["Cache-Control"].split(", ")), {"private", "no-store"})

    def test_an_analysis_and_the_list_are_private_and_asked_for_again_while_images_keep_their_hour(self):
        analysis = self.done_analysis_for(self.alice)
        for name, args in [("analysis-detail", [analysis.pk]), ("analyses", [])]:
            with self.subTest(name):
                response = self.get(reverse(f"detection_api:{name}", args=args))

                self.assertEqual(response.status_code, 200)
                self.assertEqual(set(response.headers["Cache-Control"].split(", ")), {"private", "no-cache"})
        thumbnail = self.get(reverse("detection_api:analysis-thumbnail", args=[analysis.pk]))
        self.assertEqual(set(thumbnail.headers["Cache-Control"].split(", ")), {"private", "max-age=3600"})

    def test_its_content_type_follows_the_content_not_the_name(self):
        for name, content, expected in [
            ("page.html", b"\xff\xd8\xff jpeg bytes", "image/jpeg"),
            ("script.js", b"GIF89a;alert(1)//", "image/gif"),
            ("clip.txt", b"\x1a\x45\xdf\xa3 matroska", "video/x-matroska"),
            ("clip.mkv", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),  # DocType webm
        ]:
            with self.subTest(name=name):
                analysis = self.analysis_for(self.alice, content=content, original_name=name)

                response = self.get(reverse("detection_api:analysis-file", args=[analysis.pk]))

                self.assertEqual(response["Content-Type"], expected)
                self.assertEqual(response.headers["Content-Disposition"], f'attachment; filename="{name}"')

    def test_it_answers_404_to_anyone_else(self):
        response = self.get(reverse("detection_api:analysis-file", args=[self.bobs_analysis.pk]))
        self.assertEqual(response.status_code, 404)

    def test_it_answers_401_without_a_token(self):
        response = self.client.get(reverse("detection_api:analysis-file", args=[self.bobs_analysis.pk]))
        self.assertEqual(response.status_code, 401)


class AnalysisHeatmapApiTests(ApiTestCase):
    def test_it_answers_404_for_another_users_heatmap(self):
        analysis = self.done_analysis_for(self.bob)
        face = analysis.frames.get().faces.get()

        response = self.get(reverse("detection_api:analysis-heatmap", args=[analysis.pk, face.pk]))

        self.assertEqual(response.status_code, 404)

    def test_it_answers_404_for_a_face_of_another_analysis(self):
        bobs = self.done_analysis_for(self.bob)
        mine = self.done_analysis_for(self.alice)
        bobs_face = bobs.frames.get().faces.get()

        response = self.get(reverse("detection_api:analysis-heatmap", args=[mine.pk, bobs_face.pk]))

        self.assertEqual(response.status_code, 404)


class SchemaTests(BaseTestCase):
    def schema(self) -> dict:
        return self.client.get(reverse("api-schema"), {"format": "json"}).json()

    def test_the_openapi_schema_validates_without_warnings(self):
        path = self.media_root / "schema.yml"
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
        schema = path.read_text()
        self.assertIn("/api/v1/analyses/{analysis_id}/file/", schema)
        self.assertIn("'415':", schema)

    def test_the_schema_and_the_docs_are_served_without_internet(self):
        schema = self.client.get(reverse("api-schema"))
        docs = self.client.get(reverse("api-docs"))

        self.assertEqual(schema.status_code, 200)
        self.assertContains(docs, "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
        self.assertNotContains(docs, "cdn.jsdelivr.net")

    def test_the_docs_lead_back_to_the_site_and_to_the_token(self):
        docs = self.client.get(reverse("api-docs"))

        self.assertContains(docs, '<html lang="en">')  # for screen readers' pronunciation

        self.assertContains(docs, f'href="{reverse("detection:home")}"')
        self.assertContains(docs, f'href="{reverse("profile")}">Your API token</a>')

    def test_the_schema_is_yaml_unless_json_is_asked_for(self):
        as_yaml = self.client.get(reverse("api-schema"))
        by_format = self.client.get(reverse("api-schema"), {"format": "json"})
        by_accept = self.client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")

        self.assertTrue(as_yaml.content.startswith(b"openapi: "), as_yaml.content[:40])
        for answer in (by_format, by_accept):
            self.assertEqual(answer["Content-Type"], "application/vnd.oai.openapi+json")
            self.assertEqual(answer.json()["info"]["title"], "Deepfake detection API")

    def test_every_other_api_view_answers_json_whatever_format_is_asked_for(self):
        analysis = self.analysis_for(self.alice)
        response = self.client.get(
            reverse("detection_api:analysis-detail", args=[analysis.pk]),
            {"format": "yaml"},
            HTTP_ACCEPT="application/yaml",
            HTTP_AUTHORIZATION=f"Token {self.alice_key}",
        )

        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(response.json()["id"], str(analysis.pk))

    def test_every_field_of_an_answer_is_required_and_nullable_where_it_can_be_null(self):
        components = self.schema()["components"]["schemas"]
        outputs = {name: component for name, component in components.items() if name.endswith("Output")}

        self.assertIn("AnalysisCreateOutput", outputs)
        for name, component in outputs.items():
            with self.subTest(name=name):
                self.assertEqual(sorted(component["required"]), sorted(component["properties"]))
        detail = outputs["AnalysisDetailOutput"]["properties"]
        for field in ("fake_probability", "finished_at", "width", "height"):
            self.assertTrue(detail[field].get("nullable"), field)
        for field in ("status", "progress", "created_at", "error"):
            self.assertNotIn("nullable", detail[field], field)

    def test_the_face_box_and_the_kind_of_fake_are_described_exactly(self):
        components = self.schema()["components"]["schemas"]

        box = components["AnalysisFaceOutput"]["properties"]["box"]
        self.assertEqual((box["minItems"], box["maxItems"]), (4, 4))
        kinds = components["AnalysisSummaryOutput"]["properties"]["fake_kind"]["oneOf"]
        values = [value for kind in kinds for value in components[kind["$ref"].rsplit("/", 1)[1]]["enum"]]
        self.assertEqual(sorted(values), sorted([*FAKE_KINDS, ""]))
        reasons = components["AnalysisSummaryOutput"]["properties"]["uncertain_reason"]["oneOf"]
        values = [value for reason in reasons for value in components[reason["$ref"].rsplit("/", 1)[1]]["enum"]]
        self.assertEqual(sorted(values), sorted([*UNCERTAIN_REASONS, ""]))

    def test_the_schema_says_what_the_upload_takes_and_the_download_and_errors_give(self):
        schema = self.schema()
        analyses = schema["paths"]["/api/v1/analyses/"]
        download = schema["paths"]["/api/v1/analyses/{analysis_id}/file/"]["get"]["responses"]["200"]
        errors = schema["components"]["schemas"]["ValidationErrorOutput"]["properties"]["errors"]

        self.assertEqual(list(analyses["post"]["requestBody"]["content"]), ["multipart/form-data"])
        self.assertEqual(list(download["content"]), ["*/*"])
        self.assertIn("the content type its content has", download["description"])
        self.assertIn("empty ({})", errors["description"])
        self.assertEqual(analyses["get"]["responses"]["404"]["description"], "A page past the last one.")


class AnalysisImageApiTests(ApiTestCase):
    def test_the_owner_gets_the_thumbnail_and_the_frame_image_as_jpeg(self):
        analysis = self.done_analysis_for(self.alice)
        body = self.get(reverse("detection_api:analysis-detail", args=[analysis.pk])).json()

        for url in (body["thumbnail_url"], body["frames"][0]["image_url"]):
            with self.subTest(url=url):
                response = self.get(url)
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response.headers["Content-Type"], "image/jpeg")
                self.assertTrue(b"".join(response.streaming_content).startswith(b"\xff\xd8"))
                self.assertEqual(response.headers["Cache-Control"], "private, max-age=3600")  # as the site's copies

    def test_a_file_gone_from_storage_is_a_404_that_says_so_and_is_logged_not_a_500(self):
        analysis = self.done_analysis_for(self.alice)
        body = self.get(reverse("detection_api:analysis-detail", args=[analysis.pk])).json()
        analysis.thumbnail.storage.delete(analysis.thumbnail.name)
        analysis.file.storage.delete(analysis.file.name)

        for url, what in ((body["thumbnail_url"], "thumbnail"), (body["file_url"], "uploaded file")):
            with self.subTest(url=url), self.assertLogs("detection.downloads", "ERROR"):
                response = self.get(url)

                self.assertEqual(response.status_code, 404)
                self.assertEqual(response.json(), {"detail": f"The {what} is missing from the server's storage.", "code": "not_found"})

    def test_it_answers_404_for_another_users_images(self):
        bobs = self.done_analysis_for(self.bob)
        for url in (
            reverse("detection_api:analysis-thumbnail", args=[bobs.pk]),
            reverse("detection_api:analysis-frame-image", args=[bobs.pk, 0]),
        ):
            with self.subTest(url=url):
                self.assertEqual(self.get(url).status_code, 404)

    def test_it_answers_404_while_there_is_no_image_yet(self):
        queued = self.analysis_for(self.alice)
        body = self.get(reverse("detection_api:analysis-detail", args=[queued.pk])).json()

        self.assertIsNone(body["thumbnail_url"])
        self.assertEqual(self.get(reverse("detection_api:analysis-thumbnail", args=[queued.pk])).status_code, 404)
        self.assertEqual(self.get(reverse("detection_api:analysis-frame-image", args=[queued.pk, 0])).status_code, 404)


class UsageApiTests(ApiTestCase):
    def test_it_says_what_the_account_uses_of_each_limit_so_a_script_can_pace_itself(self):
        url = reverse("detection_api:usage")
        with override_settings(DETECTION_USER_STORAGE_BYTES=10_000_000, DETECTION_USER_PENDING=5):
            with throttle_rates(uploads="2/hour"):
                before = self.get(url).json()
                self.upload(photo_upload())
                self.upload(photo_upload())
                after = self.get(url).json()
            unlimited = self.get(url).json()

        self.assertEqual(before["uploads"], {"used": 0, "limit": 2, "period_seconds": 3600, "retry_after": None})
        self.assertEqual((after["uploads"]["used"], after["pending"]), (2, 2))
        self.assertGreater(after["uploads"]["retry_after"], 3500)  # at the limit: when to send the next
        self.assertEqual(after["stored_bytes"], 2 * len(astronaut_jpeg()))
        self.assertEqual((after["storage_limit_bytes"], after["pending_limit"]), (10_000_000, 5))
        self.assertEqual(unlimited["uploads"]["limit"], 60)  # the default rate
        self.assertEqual(self.get(url, **self.auth(self.bob_key)).json()["uploads"]["used"], 0)  # one's own only

    def test_it_needs_a_token(self):
        self.assertEqual(self.client.get(reverse("detection_api:usage")).status_code, 401)
