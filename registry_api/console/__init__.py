"""The web console: a single-page app for registrars, approvers and auditors, served by the API under /console.

It is static files and nothing else (HTML, CSS, ES modules, the district outlines, and vendor copies of Leaflet,
ethers and Chart.js made from node_modules by `python -m registry_api.console.vendor`); it talks to the same
/v1 routes with the bearer token the user logs in with, so it can do nothing a token could not. Works offline:
no tiles, fonts or scripts from the internet, and a Content-Security-Policy that allows only this origin.
"""
