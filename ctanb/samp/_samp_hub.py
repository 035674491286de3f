"""The embedded SAMP hub: pyvo's SAMP hub without its lost-reply race on ``callAndWait``.

pyvo's ``SAMPHubServer._call_and_wait`` starts delivering the call on a thread and only
then registers the message id it waits on; ``_reply_`` drops a synchronous reply whose id
is not registered yet. A recipient that answers within that window (a fast handler on a
loaded machine) is never heard, and the caller gets "Timeout expired!" after its full
timeout. :class:`EmbeddedSampHub` registers the id before delivery starts.
"""

from __future__ import annotations

import copy
import threading
import time

from pyvo.samp import SAMPHubServer
from pyvo.samp.errors import SAMPProxyError, SAMPProxyTimeoutError

__all__ = ["EmbeddedSampHub"]

#: The msg-tag pyvo's SAMP hub gives the calls it makes on behalf of ``callAndWait``.
SYNC_TAG = "samp::sync::call"


class EmbeddedSampHub(SAMPHubServer):
    """A :class:`pyvo.samp.SAMPHubServer` whose ``callAndWait`` never loses a reply."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Ids whose caller is waiting, filled by the recipient's reply.
        self._waiting: dict[str, dict | None] = {}
        self._waiting_lock = threading.Lock()

    def _call_sync(self, private_key, recipient_id, message):
        # Same checks and id as pyvo's _call, but the id is registered before the
        # delivery thread starts, so the reply always finds it.
        recipient_key = self._public_id_to_private_key(recipient_id)
        if not self._is_subscribed(recipient_key, message["samp.mtype"]):
            raise SAMPProxyError(
                2, f"Client {recipient_id} not subscribed to MType {message['samp.mtype']}"
            )
        public_id = self._private_keys[private_key][0]
        msg_id = self._get_new_hub_msg_id(public_id, SYNC_TAG)
        with self._waiting_lock:
            self._waiting[msg_id] = None
        self._launch_thread(
            target=self._call_, args=(private_key, public_id, recipient_id, msg_id, message)
        )
        return msg_id

    def _call_and_wait(self, private_key, recipient_id, message, timeout):
        self._update_last_activity_time(private_key)
        if private_key not in self._private_keys:
            raise SAMPProxyError(5, f"Private-key {private_key} expired or invalid.")
        timeout = int(timeout)
        start = time.time()
        msg_id = self._call_sync(private_key, recipient_id, message)
        try:
            while self._is_running:
                with self._waiting_lock:
                    response = self._waiting[msg_id]
                if response is not None:
                    return copy.deepcopy(response)
                if 0 < timeout <= time.time() - start:
                    raise SAMPProxyTimeoutError(1, "Timeout expired!")
                time.sleep(0.01)
            return {}
        finally:
            with self._waiting_lock:
                self._waiting.pop(msg_id, None)

    def _reply_(self, responder_private_key, msg_id, response):
        if msg_id and msg_id.endswith(";;" + SYNC_TAG):
            if responder_private_key in self._private_keys:
                with self._waiting_lock:
                    # A reply after the caller gave up finds no entry and is dropped.
                    if msg_id in self._waiting:
                        self._waiting[msg_id] = response
            return
        super()._reply_(responder_private_key, msg_id, response)
