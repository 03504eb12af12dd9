"""HTML routers, one module per audience (public, account, applicant, assessor, panel, admin).

A page router never imports another router: what two of them share lives a floor down, in
svqm.web.views or the kit (ui, forms, format, deps). svqm.web.app lists them all.
"""
