"""HTTP without a framework: request and response values and wire parsing (:mod:`.messages`), the
OAuth endpoints (:mod:`.oauth`) and RFC 6750 bearer checks (:mod:`.bearer`). The adapters in
:mod:`embedauth.adapters` only translate a framework's requests to these values and back."""
