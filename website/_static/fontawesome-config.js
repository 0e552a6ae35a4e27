/* Keep Font Awesome's <i> icons as they are: replacing them by SVGs breaks the widgets' Play button. */
window.FontAwesomeConfig = { autoReplaceSvg: false };
