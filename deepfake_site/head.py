"""Answers to HEAD requests without a body.

Django leaves it to the server to drop a HEAD answer's body; gunicorn sends none but has read
it first: a HEAD of a 200 MB original read the whole file from storage, and gunicorn logged
"WSGI app sent body bytes on a no-body response". A streamed answer (a stored file) is emptied
here instead, unread; its headers (Content-Length included) are kept, and its file is closed
with the response."""

from __future__ import annotations


class HeadWithoutBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "HEAD" and response.streaming:
            # unread; the file itself is closed with the response, by the server (closing the
            # response here would send request_finished twice)
            response.streaming_content = []
        return response
