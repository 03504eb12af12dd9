"""Read models of the screens: plain data in (a session, the schemes, ids), dataclasses out.

Views never see a request or a template; the page routers render what they return.
"""
