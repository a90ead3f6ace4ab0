"""The shapes of the accounts API (schema at /api/schema/)."""

from __future__ import annotations

from rest_framework import serializers


class TokenCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=100,
        help_text='What the token is for, as your profile page will list it ("API log-in" if not given).',
    )


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`. Shown this once.")
    name = serializers.CharField()
    created = serializers.DateTimeField()
