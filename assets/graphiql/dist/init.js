// Starts GraphiQL for dishpatch. Loaded by index.html after React, ReactDOM and GraphiQL's
// UMD bundle; no inline script anywhere, so the page runs under `script-src 'self'`.
//
// Optional defaults come from a JSON data block in the page (never executed):
//   <script type="application/json" id="graphiql-config">
//     {"query": "{ viewer { id } }", "headers": {"Authorization": "Bearer ..."}}
//   </script>
// "query" is a string, "headers" an object or a JSON string. The query fills the first tab
// only when the browser has no saved GraphiQL tabs (GraphiQL keeps tabs in localStorage);
// the headers fill the Headers tab, and new tabs, and are never persisted.
// The server must escape "<" as \u003c inside the block so it cannot close the element.
(function () {
  'use strict';

  var root = document.getElementById('graphiql');

  function fail(message) {
    root.textContent = 'GraphiQL failed to start: ' + message;
  }

  function readConfig() {
    var block = document.getElementById('graphiql-config');
    if (!block) return {};
    try {
      var parsed = JSON.parse(block.textContent || '{}');
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
    } catch (error) {
      console.warn('dishpatch GraphiQL: ignoring the unreadable #graphiql-config block', error);
      return {};
    }
  }

  function asJsonText(value) {
    if (value === undefined || value === null) return undefined;
    return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  }

  if (typeof React === 'undefined' || typeof ReactDOM === 'undefined' || typeof GraphiQL === 'undefined') {
    fail('its scripts did not load.');
    return;
  }

  var config = readConfig();
  var endpoint = '/graphql';
  var wsScheme = location.protocol === 'https:' ? 'wss://' : 'ws://';

  // GraphiQL's createGraphiQLFetcher (@graphiql/toolkit): queries and mutations are POSTed to
  // `url` with the Headers tab's headers; subscriptions go over a graphql-ws client
  // (protocol `graphql-transport-ws`) whose connection_init payload is those same headers,
  // so {"Authorization": "Bearer ..."} reaches the server both ways.
  var fetcher = GraphiQL.createFetcher({
    url: location.origin + endpoint,
    subscriptionUrl: wsScheme + location.host + endpoint,
  });

  var props = {
    fetcher: fetcher,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
  };
  if (typeof config.query === 'string') props.defaultQuery = config.query;
  var headers = asJsonText(config.headers);
  if (headers !== undefined) {
    props.defaultHeaders = headers; // also for tabs opened later
    props.defaultEditorToolsVisibility = 'headers';
  }

  root.textContent = '';
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
