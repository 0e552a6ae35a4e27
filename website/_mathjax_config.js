/* MathJax 3 configuration for the course's pages (inlined by Sphinx before MathJax loads).
 * ipywidgets' widgets call MathJax 2's MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]) whenever
 * window.MathJax exists. MathJax 3 has no Hub, and when it loads it replaces window.MathJax by a new object
 * (the configuration moves to MathJax.config). So window.MathJax is an accessor here: whatever object is
 * assigned to it gets a Hub whose Queue typesets the element once MathJax is ready (before that, MathJax's
 * own first pass typesets the page, widgets included). No moment exists where a widget finds no Hub. */
(function () {
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];
        var mj = window.MathJax;
        if (Array.isArray(job) && job[0] === "Typeset" && mj && typeof mj.typesetPromise === "function") {
          mj.typesetPromise([job[2]]).catch(function (err) { console.warn("MathJax:", err); });
        }
      }
    },
  };
  var current;
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) {
      current = value;
      if (value && typeof value === "object" && !value.Hub) { value.Hub = hub; }
    },
  });
  window.MathJax = {
    options: { ignoreHtmlClass: "tex2jax_ignore|mathjax_ignore" },
  };
})();
