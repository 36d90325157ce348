// Web chat: talks to POST /api/chat, the same pipeline as the WeChat messages.
// No framework, no build step. Message text is always set with textContent.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var messages = $("messages");
  var typing = $("typing");
  var sendBtn = $("btn-send");
  var textInput = $("text");

  function newSender() {
    var hex = "";
    var bytes = new Uint8Array(8);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    for (var i = 0; i < bytes.length; i++) hex += ("0" + bytes[i].toString(16)).slice(-2);
    return "web-" + hex;
  }

  var sender;
  try {
    sender = localStorage.getItem("ecobot-web-sender");
    if (!/^web-[0-9a-f]{16}$/.test(sender || "")) {
      sender = newSender();
      localStorage.setItem("ecobot-web-sender", sender);
    }
  } catch (e) {
    sender = newSender();
  }

  function scrollDown() { messages.scrollTop = messages.scrollHeight; }

  function addRow(who, build, avatarText) {
    var row = document.createElement("div");
    row.className = "row " + who;
    var avatar = document.createElement("div");
    avatar.className = "avatar";
    avatar.textContent = avatarText || (who === "user" ? "我" : "环保");
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    build(bubble);
    row.appendChild(avatar);
    row.appendChild(bubble);
    messages.appendChild(row);
    scrollDown();
    return row;
  }

  function addText(who, text, avatarText) {
    return addRow(who, function (b) { b.textContent = text; }, avatarText);
  }

  function addImage(who, url) {
    return addRow(who, function (b) {
      var img = document.createElement("img");
      img.src = url;
      img.alt = "图片";
      img.onload = scrollDown;
      b.appendChild(img);
    });
  }

  function addSystem(text) {
    var row = document.createElement("div");
    row.className = "row";
    var b = document.createElement("div");
    b.className = "bubble system";
    b.textContent = text;
    row.appendChild(b);
    messages.appendChild(row);
    scrollDown();
  }

  var pending = 0;
  function busy(delta) {
    pending += delta;
    typing.hidden = pending === 0;
    sendBtn.disabled = pending > 0;
  }

  function post(body) {
    body.sender = sender;
    busy(1);
    return fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (res) {
      if (!res.ok) {
        addSystem(res.data.error || "发送失败，请重试");
        return;
      }
      (res.data.messages || []).forEach(function (m) {
        if (m.text) addText("bot", m.text);
      });
    }).catch(function () {
      addSystem("网络连接不上，请检查网络后重试。急事请拨打12369环保举报热线。");
    }).then(function () { busy(-1); });
  }

  // --- text -------------------------------------------------------------------
  $("composer").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = textInput.value.trim();
    if (!text || pending > 0) return;
    textInput.value = "";
    addText("user", text);
    post({ type: "text", text: text });
  });

  // --- menu -------------------------------------------------------------------
  var openPop = null;
  function closePop() {
    if (openPop) { openPop.hidden = true; openPop = null; }
  }
  document.addEventListener("click", function (ev) {
    if (!ev.target.closest || !ev.target.closest(".menu-group")) closePop();
  });

  function buildMenu(groups) {
    var nav = $("menu");
    groups.forEach(function (g) {
      var group = document.createElement("div");
      group.className = "menu-group";
      var top = document.createElement("button");
      top.type = "button";
      top.className = "menu-top";
      top.textContent = g.name;
      var pop = document.createElement("div");
      pop.className = "menu-pop";
      pop.hidden = true;
      g.items.forEach(function (item) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "menu-item";
        b.textContent = item.name;
        b.dataset.key = item.key;
        b.addEventListener("click", function () {
          closePop();
          addText("user", item.name);
          post({ type: "click", key: item.key });
        });
        pop.appendChild(b);
      });
      top.addEventListener("click", function () {
        var wasOpen = openPop === pop;
        closePop();
        if (!wasOpen) { pop.hidden = false; openPop = pop; }
      });
      group.appendChild(pop);
      group.appendChild(top);
      nav.appendChild(group);
    });
  }

  fetch("/api/menu").then(function (r) { return r.json(); }).then(function (data) {
    if (data.welcome) addText("bot", data.welcome);
    buildMenu(data.menu || []);
  }).catch(function () {
    addText("bot", "您好，请直接输入您的问题。急事请拨打12369环保举报热线。");
  });

  // --- "+" panel: image and location ------------------------------------------
  $("btn-plus").addEventListener("click", function () {
    $("extras").hidden = !$("extras").hidden;
    $("location-panel").hidden = true;
  });
  $("btn-image").addEventListener("click", function () { $("file").click(); });
  $("btn-location").addEventListener("click", function () {
    $("location-panel").hidden = !$("location-panel").hidden;
  });

  // Shrink big photos in the browser before upload (longest side 1280 px, JPEG).
  function shrink(file) {
    return new Promise(function (resolve) {
      if (!/^image\/(jpeg|png|webp)$/.test(file.type) || !window.createImageBitmap) {
        resolve(file);
        return;
      }
      createImageBitmap(file).then(function (bmp) {
        var scale = Math.min(1, 1280 / Math.max(bmp.width, bmp.height));
        if (scale === 1 && file.size < 1024 * 1024) { resolve(file); return; }
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(bmp.width * scale);
        canvas.height = Math.round(bmp.height * scale);
        canvas.getContext("2d").drawImage(bmp, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) { resolve(blob || file); }, "image/jpeg", 0.85);
      }).catch(function () { resolve(file); });
    });
  }

  $("file").addEventListener("change", function () {
    var file = this.files && this.files[0];
    this.value = "";
    if (!file) return;
    $("extras").hidden = true;
    busy(1);
    shrink(file).then(function (blob) {
      return fetch("/api/upload?sender=" + encodeURIComponent(sender), {
        method: "POST",
        headers: { "Content-Type": blob.type || "application/octet-stream" },
        body: blob
      });
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (res) {
      busy(-1);
      if (!res.ok) { addSystem(res.data.error || "图片发送失败，请重试"); return; }
      addImage("user", res.data.url);
      return post({ type: "image", upload: res.data.upload });
    }).catch(function () {
      busy(-1);
      addSystem("图片发送失败，请检查网络后重试");
    });
  });

  function sendLocation(body, shown) {
    $("extras").hidden = true;
    $("location-panel").hidden = true;
    addText("user", "📍 " + shown);
    post(body);
  }

  $("btn-geo").addEventListener("click", function () {
    if (!navigator.geolocation) {
      addSystem("浏览器不支持定位，请在下方输入地点名称");
      return;
    }
    navigator.geolocation.getCurrentPosition(function (pos) {
      var lat = Math.round(pos.coords.latitude * 1e6) / 1e6;
      var lon = Math.round(pos.coords.longitude * 1e6) / 1e6;
      var label = $("location-label").value.trim();
      sendLocation({ type: "location", latitude: lat, longitude: lon, label: label },
                   label || (lat + ", " + lon));
    }, function () {
      addSystem("没能获取位置：请允许浏览器使用位置信息，或在下方输入地点名称");
    }, { timeout: 10000, maximumAge: 60000 });
  });

  // --- staff replies (human mode): GET /api/chat/poll every few seconds -----------
  var polling = false;
  function poll() {
    if (polling || document.hidden) return;
    polling = true;
    fetch("/api/chat/poll?sender=" + encodeURIComponent(sender)).then(function (r) {
      return r.ok ? r.json() : { messages: [] };
    }).then(function (data) {
      (data.messages || []).forEach(function (m) {
        if (m.text) addText("bot staff", m.text, m.from === "staff" ? "人工" : "环保");
      });
    }).catch(function () { /* offline: try again later */ }).then(function () { polling = false; });
  }
  setInterval(poll, 3000);

  $("btn-location-send").addEventListener("click", function () {
    var label = $("location-label").value.trim();
    if (!label) { $("location-label").focus(); return; }
    $("location-label").value = "";
    sendLocation({ type: "location", label: label }, label);
  });
})();
