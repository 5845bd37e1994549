"""The mail screen (issue 4): folder list, message list, reader, actions, live updates.

- `pages`: the screen and its htmx partials (lists, reader, conversation, polling);
- `content`: what comes out of a message's bytes (the sandboxed body frame,
  attachments, .eml, print view) and the remote image proxy;
- `actions`: POSTs that change mail, through posta.mail.services.

Every view scopes its queries to request.user: another user's folder, message,
conversation, attachment or image is a 404, never a 403 that would confirm it exists.
"""
