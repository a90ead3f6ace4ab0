from unittest import mock

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.urls import reverse
from rest_framework.authtoken.models import Token

from accounts import services
from tests.detection.base import PASSWORD, BaseTestCase


class UniqueEmailTests(BaseTestCase):
    def test_the_database_refuses_a_second_account_with_the_same_email_in_any_case(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            get_user_model().objects.create_user("alice2", "ALICE@Example.org", PASSWORD)

    def test_accounts_without_an_email_are_not_constrained(self):
        get_user_model().objects.create_user("admin1", "", PASSWORD)
        get_user_model().objects.create_user("admin2", "", PASSWORD)

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


class TokenRotationTests(BaseTestCase):
    def test_changing_the_password_replaces_the_api_token(self):
        old = Token.objects.get(user=self.alice).key
        self.client.force_login(self.alice)

        response = self.client.post(
            reverse("password_change"),
            {"old_password": PASSWORD, "new_password1": PASSWORD + " 2", "new_password2": PASSWORD + " 2"},
        )

        self.assertRedirects(response, reverse("profile"))
        new = Token.objects.get(user=self.alice).key
        self.assertNotEqual(new, old)
        api = self.client_class()
        self.assertEqual(api.get(reverse("detection_api:analyses"), HTTP_AUTHORIZATION=f"Token {old}").status_code, 401)
        self.assertEqual(api.get(reverse("detection_api:analyses"), HTTP_AUTHORIZATION=f"Token {new}").status_code, 200)

    def test_a_password_set_any_other_way_replaces_it_too(self):
        old = Token.objects.get(user=self.bob).key
        self.bob.set_password("another long passphrase")  # the admin, changepassword, a reset
        self.bob.save()
        self.assertNotEqual(Token.objects.get(user=self.bob).key, old)

    def test_logging_in_does_not_replace_it(self):
        old = Token.objects.get(user=self.bob).key
        self.client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
        self.assertEqual(Token.objects.get(user=self.bob).key, old)
