import runpy
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from deepfake_site.safety import bind_host, debug_bind_refusal, is_loopback

from .child import A_SERVER, setting_in_child

GUNICORN_CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_are_recognised(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "0", "192.168.1.5", "detector.example.org", ""])
def test_every_other_address_counts_as_reachable_from_elsewhere(host):
    assert not is_loopback(host)


def test_gunicorn_bind_strings_give_their_host():
    assert [bind_host(b) for b in ["0.0.0.0:8000", "[::1]:8000", "unix:/run/site.sock", "web"]] == [
        "0.0.0.0", "::1", "unix:/run/site.sock", "web"
    ]


def test_debug_is_refused_on_a_socket_file_which_only_a_proxy_in_front_uses():
    assert "would listen on unix:/run/site.sock" in debug_bind_refusal(debug=True, hosts=[bind_host("unix:/run/site.sock")])


@pytest.mark.parametrize(
    "header", ["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PORT", "HTTP_FORWARDED", "HTTP_X_REAL_IP", "HTTP_VIA"]
)
def test_with_debug_on_a_request_through_a_proxy_is_refused_without_a_word_of_the_site(header, rf):
    from deepfake_site.safety import DebugBehindProxyMiddleware

    middleware = DebugBehindProxyMiddleware(lambda request: pytest.fail("the site answered"))
    response = middleware(rf.get("/nonexistent/", **{header: "203.0.113.7"}))

    assert response.status_code == 503
    assert b"Set DEBUG=false" in response.content and b"URLconf" not in response.content


def test_a_direct_request_passes_the_proxy_check(rf):
    from deepfake_site.safety import DebugBehindProxyMiddleware

    middleware = DebugBehindProxyMiddleware(lambda request: "the site")
    assert middleware(rf.get("/")) == "the site"


def test_the_proxy_check_is_on_exactly_when_debug_is():
    installed = "'deepfake_site.safety.DebugBehindProxyMiddleware' in s.MIDDLEWARE"
    assert setting_in_child(installed, DEBUG="true") == "True"
    assert setting_in_child(installed, **A_SERVER) == "False"


def test_debug_is_refused_only_beyond_loopback():
    assert debug_bind_refusal(debug=True, hosts=["127.0.0.1"]) is None
    assert debug_bind_refusal(debug=False, hosts=["0.0.0.0"]) is None
    assert "DEBUG is on and the site would listen on 0.0.0.0" in debug_bind_refusal(debug=True, hosts=["0.0.0.0"])


@override_settings(DEBUG=True)
def test_runserver_refuses_to_listen_on_every_interface_with_debug_on():
    with mock.patch("whitenoise.runserver_nostatic.management.commands.runserver.Command.run") as run:
        with pytest.raises(CommandError, match="DEBUG is on and the site would listen on 0.0.0.0"):
            call_command("runserver", "0.0.0.0:8000", use_reloader=False, skip_checks=True)
    run.assert_not_called()


@override_settings(DEBUG=True)
def test_runserver_on_loopback_starts_with_debug_on():
    with mock.patch("whitenoise.runserver_nostatic.management.commands.runserver.Command.run") as run:
        call_command("runserver", "127.0.0.1:8000", use_reloader=False, skip_checks=True)
    run.assert_called_once()


def test_gunicorn_serves_with_threads_and_a_timeout_that_fits_the_largest_upload(monkeypatch):
    monkeypatch.setenv("DETECTION_MAX_UPLOAD_MB", "200")
    conf = runpy.run_path(str(GUNICORN_CONF))
    assert conf["worker_class"] == "gthread" and conf["threads"] >= 4
    assert conf["wsgi_app"] == "deepfake_site.wsgi"
    seconds_for_200_mb_at_500_kb_s = 200 * 1024 / 500
    assert conf["timeout"] > seconds_for_200_mb_at_500_kb_s + 30  # plus the longest ?wait=
    assert conf["bind"] == ["127.0.0.1:8000"]


@override_settings(DEBUG=True)
def test_gunicorn_refuses_to_start_on_a_public_address_with_debug_on():
    conf = runpy.run_path(str(GUNICORN_CONF))
    public = SimpleNamespace(cfg=SimpleNamespace(bind=["127.0.0.1:8000", "0.0.0.0:8000"]))
    with pytest.raises(RuntimeError, match="listen on 0.0.0.0"):
        conf["on_starting"](public)
    conf["on_starting"](SimpleNamespace(cfg=SimpleNamespace(bind=["127.0.0.1:8000"])))


def test_gunicorn_warns_at_start_when_the_static_files_were_not_collected(tmp_path):
    conf = runpy.run_path(str(GUNICORN_CONF))
    warnings = []
    server = SimpleNamespace(cfg=SimpleNamespace(bind=["127.0.0.1:8000"]), log=SimpleNamespace(warning=lambda *a: warnings.append(a[0] % a[1:])))
    with override_settings(DEBUG=False, STATIC_ROOT=str(tmp_path)):
        conf["on_starting"](server)
        assert len(warnings) == 1 and "collectstatic" in warnings[0] and str(tmp_path) in warnings[0]
        (tmp_path / "staticfiles.json").write_text("{}")
        conf["on_starting"](server)
    with override_settings(DEBUG=True, STATIC_ROOT=str(tmp_path / "none")):  # served from static/
        conf["on_starting"](server)
    assert len(warnings) == 1
