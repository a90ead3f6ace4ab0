from unittest import mock

from django.contrib.auth import get_user_model
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.urls import reverse

from accounts import services
from accounts.models import ApiToken
from tests.detection.base import PASSWORD, BaseTestCase


class UniqueEmailTests(BaseTestCase):
    def test_the_database_refuses_a_second_account_with_the_same_email_in_any_case(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            get_user_model().objects.create_user("alice2", "ALICE@Example.org", PASSWORD)

    def test_accounts_without_an_email_are_not_constrained(self):
        get_user_model().objects.create_user("admin1", "", PASSWORD)
        get_user_model().objects.create_user("admin2", "", PASSWORD)

    @override_settings(EMAIL_CHANGE_BY_LINK=False)
    def test_a_sign_up_that_races_past_the_form_check_gets_a_message_not_an_error(self):
        # Two sign-ups in parallel both pass the form's check before either is saved.
        with mock.patch("accounts.forms.SignupForm.clean_email", lambda form: form.cleaned_data["email"]):
            response = self.client.post(
                reverse("signup"),
                {"username": "carol", "email": "Alice@example.org", "password1": PASSWORD, "password2": PASSWORD},
            )

        self.assertContains(response, "An account with this email address already exists.")
        self.assertFalse(get_user_model().objects.filter(username="carol").exists())
        self.assertEqual(get_user_model().objects.filter(email__iexact="alice@example.org").count(), 1)

    def test_the_service_says_why(self):
        with self.assertRaisesMessage(services.EmailTaken, "already exists"):
            services.user_create(username="carol", email="BOB@example.org", password=PASSWORD)


    @override_settings(EMAIL_CHANGE_BY_LINK=True)
    def test_a_sign_up_with_an_address_an_account_has_mails_its_owner_and_gives_the_new_one_none(self):
        carol, sent = services.user_sign_up(
            username="carol", email="Bob@example.org", password=PASSWORD, address="203.0.113.7", confirm_url=str,
            log_in_url="https://example.org/accounts/login/",
        )

        self.assertEqual((carol.email, sent), ("", True))
        self.assertEqual(get_user_model().objects.get(username="bob").email, "bob@example.org")
        self.assertEqual([m.to for m in mail.outbox], [["bob@example.org"]])  # the owner's own address
        self.assertIn("https://example.org/accounts/login/", mail.outbox[0].body)


class TokenRevocationOnPasswordChangeTests(BaseTestCase):
    analyses = reverse("detection_api:analyses")

    def status_with(self, key: str) -> int:
        return self.client_class().get(self.analyses, HTTP_AUTHORIZATION=f"Token {key}").status_code

    def test_changing_the_password_revokes_every_api_token_of_that_user_only(self):
        second = services.api_token_create(user=self.alice, name="second")[1]
        self.client.force_login(self.alice)

        response = self.client.post(
            reverse("password_change"),
            {"old_password": PASSWORD, "new_password1": PASSWORD + " 2", "new_password2": PASSWORD + " 2"},
        )

        self.assertRedirects(response, reverse("profile"))
        self.assertEqual((self.status_with(self.alice_key), self.status_with(second)), (401, 401))
        self.assertFalse(ApiToken.objects.filter(user=self.alice).exists())
        self.assertEqual(self.status_with(self.bob_key), 200)

    def test_a_password_set_any_other_way_revokes_them_too(self):
        self.bob.set_password("another long passphrase")  # the admin, changepassword, a reset
        self.bob.save()
        self.assertEqual(self.status_with(self.bob_key), 401)

    def test_logging_in_does_not_revoke_them(self):
        self.client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
        self.assertEqual(self.status_with(self.bob_key), 200)


class EmailSetTests(BaseTestCase):
    def test_an_address_another_account_takes_in_a_race_is_refused_and_the_old_one_kept(self):
        # The form and the link both check first; the database's index decides a race.
        with self.assertRaises(services.EmailTaken):
            services.user_email_set(user=self.alice, email="Bob@Example.org")

        self.assertEqual(self.alice.email, "alice@example.org")
        self.assertEqual(get_user_model().objects.get(pk=self.alice.pk).email, "alice@example.org")
