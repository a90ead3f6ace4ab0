from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.models import ApiToken
from tests.detection.base import PASSWORD, BaseTestCase


class ApiTokenAdminTests(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.client.force_login(get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD))

    def test_it_lists_tokens_by_name_and_prefix_without_their_digests(self):
        token = ApiToken.objects.get(user=self.alice)

        listing = self.client.get(reverse("admin:accounts_apitoken_changelist"))
        detail = self.client.get(reverse("admin:accounts_apitoken_change", args=[token.pk]))

        self.assertContains(listing, "alice&#x27;s script")
        self.assertContains(listing, self.alice_key[:6])
        for page in (listing, detail):
            self.assertNotContains(page, token.digest)

    def test_a_token_is_revoked_there_but_never_made_there(self):
        token = ApiToken.objects.get(user=self.alice)

        self.assertEqual(self.client.get(reverse("admin:accounts_apitoken_add")).status_code, 403)
        self.client.post(reverse("admin:accounts_apitoken_delete", args=[token.pk]), {"post": "yes"})

        self.assertFalse(ApiToken.objects.filter(pk=token.pk).exists())
        response = self.client_class().get(reverse("detection_api:analyses"), HTTP_AUTHORIZATION=f"Token {self.alice_key}")
        self.assertEqual(response.status_code, 401)

    def test_drfs_plain_text_tokens_are_not_offered(self):
        self.assertNotContains(self.client.get(reverse("admin:index")), "/admin/authtoken/")
