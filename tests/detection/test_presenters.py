"""What the result page draws: bands between the thresholds, one line per person, the frame
shown first, and the heatmaps' captions."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.urls import reverse

from detection import presenters
from detection.models import Analysis, AnalysisFace, AnalysisFrame, AnalysisTrack

from .base import BaseTestCase, astronaut_jpeg


class ResultViewTests(BaseTestCase):
    def video_with_two_people(self) -> Analysis:
        analysis = self.analysis_for(
            self.alice,
            original_name="clip.mp4",
            media_type=Analysis.MediaType.VIDEO,
            status=Analysis.Status.DONE,
            verdict=Analysis.Verdict.UNCERTAIN,
            fake_probability=0.6,
            threshold=0.7,
            threshold_real=0.3,
            width=640,
            height=360,
            duration=3.0,
            faces_count=5,
        )
        scores = {0: (0.2, 0.5), 10: (0.3, 0.8), 20: (0.1, None)}
        for index, (first, second) in scores.items():
            frame = AnalysisFrame.objects.create(
                analysis=analysis, index=index, time=index / 10, fake_probability=max(first, second or 0), faces_left_out=1
            )
            AnalysisFace.objects.create(frame=frame, index=0, x=10, y=40, w=80, h=80, fake_probability=first, track=1)
            if second is not None:
                AnalysisFace.objects.create(frame=frame, index=1, x=300, y=0, w=80, h=80, fake_probability=second, track=2)
        AnalysisTrack.objects.create(analysis=analysis, number=1, fake_probability=0.2, frames=3, first_time=0, last_time=2, counted=True)
        AnalysisTrack.objects.create(analysis=analysis, number=2, fake_probability=0.6, frames=2, first_time=0, last_time=1, counted=True)
        return analysis

    def test_a_verdict_resting_on_a_face_seen_in_few_frames_says_so(self):
        analysis = self.video_with_two_people()
        for frames_analysed, expected in ((32, True), (6, False)):  # a short clip: 2 of 6 is a third
            with self.subTest(frames_analysed=frames_analysed):
                analysis.frames_analysed = frames_analysed

                sentence = presenters.result_view(analysis).sentence  # person 2 decides: seen in 2 frames

                self.assertEqual(
                    f"found in only 2 of the {frames_analysed} sampled frames" in sentence, expected, sentence
                )

    def test_a_video_held_at_uncertain_says_why_in_its_own_words(self):
        analysis = self.video_with_two_people()  # thresholds 0.3 and 0.7; person 2 has 1 face at 0.8
        analysis.verdict, analysis.fake_probability, analysis.frames_analysed = Analysis.Verdict.UNCERTAIN, 0.25, 32
        analysis.synthetic_probability, analysis.synthetic_threshold = 0.97, 0.714
        expected = {
            "few_frames": "Not called real: person 2 scores 25.0%, below 30.0%, but was found in only 2 of the 32 sampled frames",
            "ai_generated_video": "Not called fake: the second model rates the face as likely AI-generated (97.0%",
        }
        for reason, start in expected.items():
            with self.subTest(reason=reason):
                analysis.uncertain_reason = reason

                sentence = presenters.result_view(analysis).sentence

                self.assertTrue(sentence.startswith(start), sentence)
                self.assertNotIn("The model is unsure", sentence)
                self.assertLessEqual(sentence.count("found in only"), 1, sentence)  # said once, not twice

    def test_a_hold_for_fake_moments_names_the_person_whose_faces_held_it_everywhere_on_the_page(self):
        """Person 1 has six faces in the fake band at a mean of 33 %; person 2, never in it, has
        the file's highest mean (40 %). The hold rests on person 1 (ml/caution.py's rule)."""
        analysis = self.analysis_for(
            self.alice, original_name="two.mp4", media_type=Analysis.MediaType.VIDEO, status=Analysis.Status.DONE,
            verdict=Analysis.Verdict.UNCERTAIN, uncertain_reason="fake_moments", fake_probability=0.4,
            threshold=0.864, threshold_real=0.437, width=640, height=360, duration=3.2, faces_count=64, frames_analysed=32,
        )
        for k in range(32):
            frame = AnalysisFrame.objects.create(analysis=analysis, index=k, time=k / 10, fake_probability=0.9 if 1 <= k <= 6 else 0.4)
            AnalysisFace.objects.create(frame=frame, index=0, x=10, y=40, w=150, h=150, fake_probability=0.9 if 1 <= k <= 6 else 0.2, track=1)
            AnalysisFace.objects.create(frame=frame, index=1, x=300, y=40, w=150, h=150, fake_probability=0.4, track=2)
        AnalysisTrack.objects.create(analysis=analysis, number=1, fake_probability=0.33125, frames=32, first_time=0, last_time=3.1, counted=True)
        AnalysisTrack.objects.create(analysis=analysis, number=2, fake_probability=0.4, frames=32, first_time=0, last_time=3.1, counted=True)
        self.login(self.alice)

        view = presenters.result_view(analysis)
        page = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        self.assertTrue(view.sentence.startswith(
            "Not called real: person 1 scores 33.1% on average, below 43.7%, but 6 of their 32 faces, "
            "at 0.1, 0.2, 0.3, 0.4, 0.5 and 0.6 s, score at or above the 86.4% fake threshold"
        ), view.sentence)
        self.assertEqual((view.deciding_track, view.headline_track), (1, None))  # 40 % is person 2's, not theirs
        self.assertNotIn("fake probability of person", page)
        cards = {card.number: card.deciding for card in view.person_cards}
        self.assertEqual(cards, {1: True, 2: False})

    def test_a_real_score_held_by_a_half_way_ai_generated_score_says_both_and_draws_that_person_uncertain(self):
        analysis = self.video_with_two_people()  # thresholds 0.3 and 0.7
        analysis.verdict, analysis.fake_probability, analysis.uncertain_reason = Analysis.Verdict.UNCERTAIN, 0.2, "ai_generated_hint"
        analysis.synthetic_probability, analysis.synthetic_threshold = 0.471, 0.714
        AnalysisTrack.objects.filter(analysis=analysis, number=1).update(synthetic_probability=0.471)

        view = presenters.result_view(analysis)

        self.assertTrue(view.sentence.startswith("Not called real: the face-swap model found no sign of a swap (20.0%, below 30.0%)"), view.sentence)
        self.assertIn("gives 47.1%: under its 71.4% threshold but above half of it", view.sentence)
        self.assertEqual((analysis.verdict_label, analysis.verdict_probability, view.deciding_track), ("Uncertain: AI-generated?", 0.471, 1))
        person_1 = [box for frame in view.frames for box in frame.boxes if box.track == 1]
        self.assertEqual({(box.band, box.label) for box in person_1}, {("uncertain", "P1 AI 47.1%")})

    def test_a_video_tells_how_many_checked_faces_reached_the_ai_threshold_when_no_person_did(self):
        analysis = self.video_with_two_people()
        analysis.verdict, analysis.synthetic_probability, analysis.synthetic_threshold = Analysis.Verdict.UNCERTAIN, 0.001, 0.714
        analysis.save()
        faces = list(AnalysisFace.objects.filter(frame__analysis=analysis, track=1).order_by("frame__index"))
        for face, value in zip(faces, (0.999, 0.001, 0.98)):
            face.synthetic_probability = value
            face.save()
        self.login(self.alice)

        view = presenters.result_view(analysis)
        page = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        self.assertEqual(view.ai_faces_reached, (2, 3))
        self.assertIn("2 of the 3 faces checked reached the threshold on their own", page)
        analysis.synthetic_probability = 0.99  # a person reached it: the verdict's own line says so
        self.assertIsNone(presenters.result_view(analysis).ai_faces_reached)

    def test_a_video_held_for_the_ai_check_shows_that_probability_and_names_the_person_it_rests_on(self):
        analysis = self.video_with_two_people()
        analysis.verdict, analysis.fake_probability, analysis.uncertain_reason = Analysis.Verdict.UNCERTAIN, 0.2, "ai_generated_video"
        analysis.synthetic_probability, analysis.synthetic_threshold = 0.97, 0.714
        AnalysisTrack.objects.filter(analysis=analysis, number=1).update(synthetic_probability=0.97)
        AnalysisTrack.objects.filter(analysis=analysis, number=2).update(synthetic_probability=0.1)

        view = presenters.result_view(analysis)

        self.assertEqual(analysis.verdict_probability, 0.97)
        self.assertEqual(view.deciding_track, 1)
        self.assertEqual(view.ai_flagged_too, [])  # the sentence says it; no second line
        self.assertIn("person 1 as likely AI-generated (97.0%", view.sentence)
        # the timeline's words count the fake probability's bands, as its chart draws them, not
        # the colour of a box drawn for the AI-generated call
        self.assertEqual(view.timeline.summary[0], "Person 1: 3 sampled frames (0 fake, 1 uncertain, 2 real); highest 30.0% at 1.00 s.")

    def test_a_verdict_close_to_its_threshold_says_another_copy_may_fall_on_the_other_side(self):
        analysis = self.video_with_two_people()  # thresholds 0.3 and 0.7
        cases = {
            (Analysis.Verdict.FAKE, 0.72): True,
            (Analysis.Verdict.FAKE, 0.90): False,
            (Analysis.Verdict.REAL, 0.27): True,
            (Analysis.Verdict.REAL, 0.05): False,
            (Analysis.Verdict.UNCERTAIN, 0.69): False,  # uncertain says so already
        }
        for (verdict, score), expected in cases.items():
            with self.subTest(verdict=verdict, score=score):
                analysis.verdict, analysis.fake_probability = verdict, score

                sentence = presenters.result_view(analysis).sentence

                self.assertEqual("close to the threshold" in sentence, expected, sentence)
                # and the badge says so wherever it is shown (history, upload list, report)
                self.assertEqual(analysis.verdict_label.endswith("(borderline)"), expected, analysis.verdict_label)

    def test_a_verdict_resting_on_a_small_face_says_what_that_does_and_a_large_one_does_not(self):
        analysis = self.video_with_two_people()  # person 2, who decides, is 80 px across
        small = presenters.result_view(analysis).sentence
        AnalysisFace.objects.filter(frame__analysis=analysis, track=2).update(w=150, h=180)
        large = presenters.result_view(analysis).sentence

        self.assertIn("The face it rests on is small, about 80 px across", small)
        self.assertIn("Look for a larger, sharper copy.", small)
        self.assertNotIn("is small", large)

    def test_the_face_beside_its_heatmap_shows_the_region_the_heatmap_covers(self):
        analysis = self.video_with_two_people()
        face = AnalysisFace.objects.filter(frame__analysis=analysis, track=1).first()
        face.heatmap.save("h.png", ContentFile(b"\x89PNG\r\n\x1a\n"), save=False)
        face.crop = [0, 22, 124, 124]
        face.heatmap_focus = "brightest at the top left of the face"
        face.save()

        [heatmap] = presenters.result_view(analysis).heatmaps
        self.assertEqual(heatmap.alt, "Heatmap of Person 1 at 0.00 s (frame 0): brightest at the top left of the face")

        self.assertEqual(heatmap.crop_view_box, "0 22 124 124")
        self.assertEqual(heatmap.crop_label, "Person 1’s face at 0.00 s (frame 0), as the model saw it")

    def test_a_tilted_face_beside_its_heatmap_is_shown_turned_upright_as_the_model_saw_it(self):
        analysis = self.video_with_two_people()
        face = AnalysisFace.objects.filter(frame__analysis=analysis, track=1).first()
        face.heatmap.save("h.png", ContentFile(b"\x89PNG\r\n\x1a\n"), save=False)
        face.crop, face.crop_angle = [40, 20, 100, 120], -15.0  # found on the frame turned 15 degrees clockwise
        face.save()
        face.frame.image.save("frame.jpg", ContentFile(astronaut_jpeg()))  # the picture beside the heatmap
        self.login(self.alice)

        [heatmap] = presenters.result_view(analysis).heatmaps
        page = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        self.assertEqual(heatmap.crop_view_box, "40 20 100 120")
        self.assertEqual(heatmap.crop_transform, "rotate(15 90 80)")  # SVG turns clockwise for a positive angle
        self.assertIn('transform="rotate(15 90 80)"', page)
        face.crop_angle = 0.0
        face.save()
        self.assertEqual(presenters.result_view(analysis).heatmaps[0].crop_transform, "")

    def test_the_timeline_is_also_said_in_words_person_by_person(self):
        """For screen readers and the printed report, which has no frames table."""
        analysis = self.video_with_two_people()  # thresholds 0.3 and 0.7
        self.login(self.alice)

        summary = presenters.result_view(analysis).timeline.summary
        report = self.client.get(reverse("detection:report", args=[analysis.pk])).content.decode()

        self.assertEqual(
            summary,
            [
                "Person 1: 3 sampled frames (0 fake, 1 uncertain, 2 real); highest 30.0% at 1.00 s.",
                "Person 2: 2 sampled frames (1 fake, 1 uncertain, 0 real); highest 80.0% at 1.00 s.",
            ],
        )
        self.assertIn('aria-describedby="timeline-summary"', report)
        self.assertIn(f"<li>{summary[1]}</li>", report)

    def test_the_timeline_has_three_bands_and_a_line_per_person(self):
        view = presenters.result_view(self.video_with_two_people())
        timeline = view.timeline

        self.assertEqual([band["name"] for band in timeline.bands], ["fake", "uncertain", "real"])
        fake, uncertain, real = timeline.bands
        self.assertAlmostEqual(uncertain["h"] / (timeline.bottom - timeline.top), 0.4, places=2)
        self.assertEqual([line.number for line in timeline.tracks], [1, 2])
        self.assertEqual([len(line.points) for line in timeline.tracks], [3, 2])
        self.assertEqual(timeline.tracks[0].points[0][0], timeline.left)
        # told apart by shape as well as colour: person 1 a circle, person 2 a square
        self.assertEqual([line.marker[:1] for line in timeline.tracks], ["", "M"])
        self.assertTrue(all(point[4].startswith("M") for point in timeline.tracks[1].points))

    def test_the_bands_names_sit_beside_the_plot_where_no_line_can_cover_them(self):
        analysis = self.video_with_two_people()
        timeline = presenters.result_view(analysis).timeline
        self.login(self.alice)
        html = self.client.get(reverse("detection:detail", args=[analysis.pk])).content.decode()

        for band in timeline.bands:
            self.assertEqual(band["label_y"], round(band["y"] + band["h"] / 2, 2))
        self.assertGreaterEqual(timeline.width - timeline.right, 80)  # room for "Uncertain" at 12 px
        self.assertIn(f'<text class="band-label" x="{timeline.right + 8}"', html)

    def test_it_shows_the_most_suspicious_frame_first_and_colours_boxes_by_band(self):
        view = presenters.result_view(self.video_with_two_people())

        self.assertEqual(view.selected.index, 10)
        self.assertEqual([box.band for box in view.selected.boxes], ["uncertain", "fake"])
        self.assertEqual([box.label for box in view.selected.boxes], ["P1 30.0%", "P2 80.0%"])
        self.assertEqual(view.faces_left_out, 3)
        self.assertEqual(view.deciding_track, 2)
        self.assertIn("person 2", view.sentence)

    def test_a_label_that_would_leave_the_top_of_the_picture_goes_under_the_box(self):
        view = presenters.result_view(self.video_with_two_people())
        high, low = view.selected.boxes[1], view.selected.boxes[0]

        self.assertEqual(high.label_y, high.y + high.h)
        self.assertEqual(low.label_y, round(low.y - low.label_h, 1))

    def test_the_stage_follows_the_detectors_progress(self):
        analysis = Analysis(status=Analysis.Status.RUNNING, progress=0.0)
        stages = []
        for progress in (0.0, 0.3, 0.5, 0.85, 0.95):
            analysis.progress = progress
            stages.append(presenters.stage_for(analysis)[0])
        self.assertEqual(stages, ["decoding", "faces", "faces", "explaining", "saving"])


class SentenceAndNumberTests(BaseTestCase):
    def test_a_probability_a_hair_from_certain_is_not_written_as_certain(self):
        self.assertEqual(
            [presenters.percent_text(p) for p in (1.0, 0.99996, 0.9994, 0.8734, 0.0004, 0.0)],
            [">99.9%", ">99.9%", "99.9%", "87.3%", "<0.1%", "<0.1%"],
        )

    def test_a_real_verdict_says_when_the_ai_generated_check_came_close(self):
        def sentence(synthetic):
            analysis = self.done_analysis_for(
                self.alice, verdict="real", fake_probability=0.05, synthetic_probability=synthetic, synthetic_threshold=0.714
            )
            return presenters.verdict_sentence(analysis, threshold=0.864, threshold_real=0.437, track=None)

        self.assertIn("gives 47.1%: under its 71.4% threshold but above half of it", sentence(0.471))
        self.assertNotIn("second model", sentence(0.2))  # far below: nothing to add
        self.assertNotIn("second model", sentence(None))  # not scored

    def test_no_face_on_a_photo_is_said_in_a_photos_words_with_what_to_try(self):
        photo = self.done_analysis_for(self.alice, verdict="no_face", fake_probability=None)

        sentence = presenters.verdict_sentence(photo, threshold=0.864, threshold_real=0.437, track=None)

        self.assertTrue(sentence.startswith("No face was found on the photo"), sentence)
        self.assertIn("a face cropped tight to its edges", sentence)


class FrameOrderTests(BaseTestCase):
    def test_each_frame_lists_its_people_by_number_whatever_order_they_were_found_in(self):
        analysis = self.done_analysis_for(self.alice, media_type=Analysis.MediaType.VIDEO)
        frame = AnalysisFrame.objects.create(analysis=analysis, index=99, time=3.3, fake_probability=0.5)
        for index, track in enumerate((2, 0, 1)):
            AnalysisFace.objects.create(frame=frame, index=index, x=10 * index, y=0, w=80, h=80, fake_probability=0.5, track=track)

        view = presenters.result_view(analysis)

        [shown] = [f for f in view.frames if f.index == 99]
        self.assertEqual([box.track for box in shown.boxes], [1, 2, 0])


class PersonCardTests(BaseTestCase):
    video_with_two_people = ResultViewTests.video_with_two_people

    def test_a_face_swap_fake_draws_nobody_as_ai_generated_and_names_the_second_models_call_in_words(self):
        analysis = self.video_with_two_people()  # person 2 decides
        Analysis.objects.filter(pk=analysis.pk).update(
            verdict="fake", fake_kind="face_swap", fake_probability=0.9, synthetic_probability=0.8, synthetic_threshold=0.7
        )
        AnalysisTrack.objects.filter(analysis=analysis, number=1).update(synthetic_probability=0.8)  # the other person
        analysis.refresh_from_db()

        view = presenters.result_view(analysis)

        self.assertFalse(view.ai_generated_people)  # no box or card drawn as AI-generated
        self.assertTrue(all(card.ai_generated is None for card in view.person_cards))
        self.assertEqual(view.ai_flagged_too, [(1, 0.8, True)])
        self.login(self.alice)
        page = self.client.get(reverse("detection:detail", args=[analysis.pk]))
        self.assertContains(page, "The second model also rates person 1 as AI-generated (80.0%), but a face-swap finding comes first")
    def test_two_people_each_get_a_card_at_their_highest_scoring_face_and_the_deciding_one_is_named(self):
        analysis = self.video_with_two_people()

        cards = presenters.result_view(analysis).person_cards

        self.assertEqual([card.number for card in cards], [1, 2])
        first, second = cards
        self.assertEqual((first.best_score, first.best_time), (0.3, 1.0))  # frame 10
        self.assertEqual((second.best_score, second.best_time), (0.8, 1.0))
        self.assertEqual([card.deciding for card in cards], [False, True])
        self.assertEqual(second.crop_view_box, "290.0 -10.0 100.0 100.0")  # the 80 px face with room around it
        self.login(self.alice)
        page = self.client.get(reverse("detection:detail", args=[analysis.pk]))
        self.assertContains(page, "The people, one by one")
        self.assertContains(page, "The verdict rests on this person.")

    def test_one_person_gets_no_cards_the_verdict_already_speaks_for_them(self):
        analysis = self.video_with_two_people()
        AnalysisTrack.objects.filter(analysis=analysis, number=2).delete()

        self.assertEqual(presenters.result_view(analysis).person_cards, [])


def test_the_pages_rule_for_fake_moments_is_the_engines():
    from ml import caution

    assert (presenters.FAKE_MOMENTS_FACES, presenters.FAKE_MOMENTS_SHARE) == (caution.FAKE_MOMENTS_FACES, caution.FAKE_MOMENTS_SHARE)
