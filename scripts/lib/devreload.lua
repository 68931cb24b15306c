-- devreload: in development, every open page of the app follows the edits of scripts/ and views/.
--
-- devreload.mount(router, views) adds two routes and tags the pages (the app calls it only when
-- h2lua.config.app_env is "development"; in production neither route exists and pages are as is):
--   GET /_dev/reload.js   the page's script (a same-origin file: the CSP stays script-src 'self')
--   GET /_dev/events?since=V   Server-Sent Events from the version V the page was rendered with:
--       "reload" (data: the new version) as soon as a version newer than V serves, or at once when
--       V is a version of another run of the server (it was restarted), then the stream ends (the
--       script reloads the page); "load-error" (data: the error, file and line)
--       while the last reload failed, "load-ok" when it no longer does; a comment every 15 s.
-- and views.render passes `dev_version` (the version that renders) to every view, which the
-- layout puts on its <script src="/_dev/reload.js" data-version=...> tag.
-- A version is "BOOT.GEN": the run of the server process and its reload generation
-- (h2lua.app_state()), the same on every worker; generations start again at 0 when the server does.

local h2lua = require "h2lua"

local devreload = {}

local format, gsub, match = string.format, string.gsub, string.match

-- The version that serves: "BOOT.GEN", and its parts.
local function current()
    local gen, load_error, boot = h2lua.app_state()
    return boot .. "." .. gen, load_error, boot, gen
end

devreload.script = [[
// h2lua development: reload this page when a new version of the app loads; show a load error.
(function () {
  'use strict';
  var tag = document.currentScript;
  var since = (tag && tag.dataset.version) || '';
  var shown = null;
  function show(text) {
    if (!shown) {
      shown = document.createElement('div');
      shown.id = 'dev-load-error';
      shown.setAttribute('role', 'alert');
      var s = shown.style;
      s.position = 'fixed'; s.left = '0'; s.right = '0'; s.top = '0'; s.zIndex = '2147483647';
      s.maxHeight = '60vh'; s.overflow = 'auto'; s.margin = '0'; s.padding = '1rem';
      s.background = '#fff3f3'; s.color = '#600'; s.borderBottom = '3px solid #c00';
      s.font = '14px/1.4 monospace'; s.whiteSpace = 'pre-wrap';
      document.body.appendChild(shown);
    }
    shown.textContent = 'The application failed to load:\n' + text;
  }
  function hide() {
    if (shown) { shown.remove(); shown = null; }
  }
  var es = new EventSource('/_dev/events?since=' + encodeURIComponent(since));
  es.addEventListener('open', function () { document.documentElement.dataset.devReload = 'connected'; });
  es.addEventListener('reload', function () { es.close(); location.reload(); });
  es.addEventListener('load-error', function (e) { show(e.data); });
  es.addEventListener('load-ok', hide);
})();
]]

-- One SSE event: every line of data gets its own "data:" field.
local function event(name, data)
    return format("event: %s\ndata: %s\n\n", name, (gsub(data, "\r?\n", "\ndata: ")))
end

local HEARTBEAT = 15 -- seconds between comments, which also find clients that have gone

function devreload.events(req)
    local since_boot, since_gen = match(req.query.since or "", "^(%x+)%.(%d+)$")
    since_gen = since_gen and math.tointeger(tonumber(since_gen)) or 0
    return {
        headers = { ["content-type"] = "text/event-stream", ["cache-control"] = "no-store" },
        stream = function(out)
            if not out:send("retry: 500\n\n") then return end
            local shown_error, quiet = nil, 0
            while true do
                local version, load_error, boot, gen = current()
                if boot ~= since_boot or gen > since_gen then
                    out:send(event("reload", version))
                    return
                end
                if load_error ~= shown_error then
                    local ok
                    if load_error then
                        ok = out:send(event("load-error", load_error))
                    else
                        ok = out:send(event("load-ok", ""))
                    end
                    if not ok then return end
                    shown_error, quiet = load_error, 0
                end
                if quiet >= HEARTBEAT then
                    if not out:send(": \n\n") then return end
                    quiet = 0
                end
                if not out:sleep(0.1) then return end
                quiet = quiet + 0.1
            end
        end,
    }
end

function devreload.script_response()
    return {
        headers = { ["content-type"] = "text/javascript; charset=utf-8", ["cache-control"] = "no-store" },
        body = devreload.script,
    }
end

function devreload.mount(router, views)
    router:get("/_dev/reload.js", devreload.script_response)
    router:get("/_dev/events", devreload.events)
    local render = views.render
    views.render = function(name, data, opts)
        data = data or {}
        if data.dev_version == nil then data.dev_version = (current()) end
        return render(name, data, opts)
    end
end

return devreload
