/* Lanyard: the end of a sign-out with front-channel logout (OpenID Connect
 * Front-Channel Logout 1.0). Served as /static/js/signout.js, loaded before
 * the page's hidden iframes (class "frontchannel"), each an application's
 * frontchannel_logout_uri. Once every iframe has loaded, or after three
 * seconds at most, the browser follows the #signout-next link (the
 * application's post_logout_redirect_uri), if the page has one. */
(function () {
  "use strict";

  var left = -1;
  var gone = false;

  function next() {
    var link = document.getElementById("signout-next");
    if (gone || !link) return;
    gone = true;
    window.location.assign(link.href);
  }

  // Load events do not bubble: catch the iframes' on the way down.
  document.addEventListener(
    "load",
    function (event) {
      var t = event.target;
      if (!t || t.tagName !== "IFRAME" || t.className !== "frontchannel") return;
      if (left < 0) left = document.querySelectorAll("iframe.frontchannel").length;
      left -= 1;
      if (left <= 0) next();
    },
    true
  );
  setTimeout(next, 3000);
})();
