import io

from django.http import FileResponse, HttpResponse
from django.test import RequestFactory

from deepfake_site.head import HeadWithoutBodyMiddleware


class Tracked(io.BytesIO):
    read_bytes = 0

    def read(self, *args):
        data = super().read(*args)
        self.read_bytes += len(data)
        return data


def answer(method: str, body) -> tuple:
    request = getattr(RequestFactory(), method.lower())("/api/v1/analyses/x/file/")
    return HeadWithoutBodyMiddleware(lambda _: body)(request), body


def test_a_head_of_a_stored_file_leaves_it_unread_and_closed_but_says_its_length():
    stored = Tracked(b"x" * 100_000)

    response, _ = answer("HEAD", FileResponse(stored, content_type="video/mp4"))

    assert b"".join(response.streaming_content) == b""
    assert stored.read_bytes == 0
    assert response.headers["Content-Length"] == "100000"
    response.close()  # as the server does once the headers are sent
    assert stored.closed


def test_a_get_of_a_stored_file_still_sends_it_whole():
    response, _ = answer("GET", FileResponse(Tracked(b"x" * 1000), content_type="video/mp4"))

    assert b"".join(response.streaming_content) == b"x" * 1000


def test_an_answer_that_is_not_streamed_is_left_to_the_server():
    response, _ = answer("HEAD", HttpResponse(b"page"))

    assert response.content == b"page"
