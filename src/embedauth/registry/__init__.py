"""What admins manage: the permission catalog (:mod:`.permissions`), app registrations
(:mod:`.registrations`), people's API refresh tokens (:mod:`.refresh_tokens`), and coalesced
``last_used_at`` writes (:mod:`.last_used`)."""
