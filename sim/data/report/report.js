// Draws every chart of a wssim report: the figure specs are the JSON in #wssim-figures.
// The charts in the first screen are drawn at once, the others one by one after it, so the
// page is readable before the last chart is drawn. <body data-charts-drawn="N"> when done.
(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("wssim-figures").textContent);
  var config = {
    displaylogo: false,
    responsive: true,
    toImageButtonOptions: { format: "svg" },
  };
  var ids = Object.keys(specs);
  var height = window.innerHeight || 1000;
  var first = ids.filter(function (id) {
    return document.getElementById(id).getBoundingClientRect().top < height;
  });
  var rest = ids.filter(function (id) { return first.indexOf(id) < 0; });
  var drawing = [];

  function draw(id) {
    drawing.push(Plotly.newPlot(id, specs[id].data, specs[id].layout, config));
  }

  function done() {
    Promise.all(drawing).then(function () {
      document.body.setAttribute("data-charts-drawn", String(drawing.length));
      document.body.setAttribute("data-drawn-ms", String(Math.round(performance.now())));
    });
  }

  function next() {
    if (!rest.length) { done(); return; }
    draw(rest.shift());
    setTimeout(next, 0);
  }

  first.forEach(draw);
  Promise.all(drawing).then(function () {
    document.body.setAttribute("data-first-screen-ms", String(Math.round(performance.now())));
    setTimeout(next, 0);
  });
})();
