// The console's only script of its own (its Content-Security-Policy forbids inline script).
//   <button type="button" data-print>     prints the page
//   <canvas data-chart="ID">              draws the Chart.js configuration in
//                                         <script type="application/json" id="ID">
//                                         (include static/vendor/chart.umd.min.js first)
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
  if (typeof window.Chart !== "function") {
    return;
  }
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const source = document.getElementById(canvas.dataset.chart);
    if (source) {
      new window.Chart(canvas, JSON.parse(source.textContent));
    }
  }
});
