"""Sphinx configuration of the course's website, built by ``make site`` (website/make_site.py) from the stored
notebooks in a staging folder (build/site-src). Nothing here loads from the network when a page is read:
MathJax 3 and the widget renderer are local copies under _static/vendor/, unpacked from npm packages at
build time.
"""

project = "diffnlp: Diffusion in NLP"
author = "the diffnlp authors"
copyright = "the diffnlp authors; lesson texts and code under the repository's licence"

# githubpages writes .nojekyll, so GitHub Pages serves _static/ and _images/ as they are.
extensions = ["myst_nb", "sphinx.ext.githubpages"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"

# The notebooks are stored executed: render their outputs, never run them.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
# MathJax processes the whole page with its default \( \) and \[ \] delimiters (what Sphinx writes);
# no "$" delimiters, so a dollar sign in printed output stays text.
myst_update_mathjax = False
myst_heading_anchors = 3

# Local MathJax 3 (mathjax_path is relative to _static), configured by _mathjax_config.js, which also
# gives ipywidgets the MathJax 2 call it makes (MathJax.Hub.Queue).
mathjax_path = "vendor/mathjax/tex-mml-chtml.js"
mathjax_config_path = "_mathjax_config.js"

# The widget renderer: @jupyter-widgets/html-manager's self-contained embed.js (its fonts beside it),
# in place of myst-nb's default RequireJS + embed-amd.js from public CDNs.
nb_ipywidgets_js = {"vendor/html-manager/embed.js": {}}

html_theme = "sphinx_book_theme"
html_title = "Diffusion in NLP"
html_static_path = ["_static"]
html_css_files = ["diffnlp-site.css"]
# Before the theme's own scripts: Font Awesome must not replace the widgets' <i> icons by SVGs (it breaks
# the Play button).
html_js_files = [("fontawesome-config.js", {"priority": 1})]
html_context = {"default_mode": "light"}
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
html_show_sourcelink = False
# No _sources/ copy of each notebook (8.5 MB of outputs a second time): the notebooks are in the repository.
html_copy_source = False
html_last_updated_fmt = None
html_favicon = "favicon.svg"  # else the browser asks for /favicon.ico, which a static host may not have
