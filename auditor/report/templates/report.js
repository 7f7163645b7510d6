// report.html's only script: tables built from the embedded JSON, one page of rows at a time.
// Every value from the corpus or the network goes into the page as a text node
// (never innerHTML); only http(s) URLs become links, as on the server side.
(function () {
  'use strict';

  var DATA = JSON.parse(document.getElementById('report-data').textContent);
  var S = DATA.strings;
  var WEB_URL = /^https?:\/\/[^\s\x00-\x1f\x7f]+$/i;
  var PAGE_SIZES = [50, 100, 250, 1000];
  var SEVERITY_RANK = {}; // the report's order: error, warning, then anything else
  DATA.severities.forEach(function (name, rank) { SEVERITY_RANK[name] = rank; });
  function severityRank(name) { return SEVERITY_RANK[name] === undefined ? 9 : SEVERITY_RANK[name]; }

  // Each table of DATA is {columns: [name, ...], rows: [[value, ...], ...]}; strings are indexes into S.
  // The script names the columns it reads and finds them in the header, so a column
  // renamed or dropped on the Python side stops the script here, not in a wrong cell.
  function columnsOf(table, names) {
    var index = {};
    names.forEach(function (name) {
      var i = table.columns.indexOf(name);
      if (i < 0) throw new Error('report data: no column "' + name + '"');
      index[name] = i;
    });
    return index;
  }
  var F = columnsOf(DATA.findings, ['severity', 'code', 'document', 'line', 'field', 'url', 'fetched_url', 'host',
    'status', 'message', 'expected', 'actual', 'final_url', 'redirects', 'new', 'failing_runs', 'first_seen',
    'archived_url', 'archived_at']);
  var H = columnsOf(DATA.hosts, ['host', 'urls', 'checked', 'excluded', 'ok', 'dead', 'blocked', 'median_ms']);
  var D = columnsOf(DATA.documents, ['document', 'references', 'errors', 'warnings', 'codes']);

  function str(i) { return i === null || i === undefined ? '' : S[i]; }

  function append(node, children) {
    if (children === null || children === undefined) return node;
    if (!Array.isArray(children)) children = [children];
    for (var i = 0; i < children.length; i++) {
      var child = children[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function el(tag, className, children) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    return append(node, children);
  }

  function linkOrText(url) {
    if (!url) return null;
    if (!WEB_URL.test(url)) return document.createTextNode(url);
    var a = el('a', null, url);
    a.href = url;
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
    return a;
  }

  // --suggest: "archived copy (2013-09-19)", a link to the snapshot (only if it is an http(s) URL).
  function archivedLink(url, at) {
    if (!url) return null;
    var label = 'archived copy' + (at ? ' (' + at.slice(0, 10) + ')' : '');
    if (!WEB_URL.test(url)) return document.createTextNode(label + ': ' + url);
    var a = el('a', 'archived', label);
    a.href = url;
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
    return a;
  }

  function range(n) {
    var out = new Array(n);
    for (var i = 0; i < n; i++) out[i] = i;
    return out;
  }

  function option(value, label) {
    var o = document.createElement('option');
    o.value = value;
    o.textContent = label;
    return o;
  }

  function labelled(text, control, className) {
    return el('label', className || null, className ? [control, text] : [text, control]);
  }

  // -- a paginated, sortable table over an array of rows ---------------------
  function Table(options) {
    this.rows = options.rows;
    this.columns = options.columns; // [{label, key(row), cell(row), className, numeric}]
    this.rowClass = options.rowClass || null;
    this.noun = options.noun;
    this.pageSize = options.pageSize || 100;
    this.onChange = options.onChange || function () {};
    this.page = 0;
    this.sortColumn = -1;
    this.sortDir = 1;
    this.order = range(this.rows.length);
    this.predicate = null;
    this.visible = this.order;
    this.keys = {};

    var self = this;
    this.status = el('span', 'status');
    this.status.setAttribute('aria-live', 'polite');
    this.pagers = [this.makePager(true), this.makePager(false)];
    var headRow = el('tr');
    this.headers = this.columns.map(function (column, index) {
      var th = el('th', column.numeric ? 'num' : null);
      var button = el('button', 'sort', column.label);
      button.type = 'button';
      button.addEventListener('click', function () {
        var dir = self.sortColumn === index ? -self.sortDir : (column.numeric ? -1 : 1);
        self.sortBy(index, dir);
        self.onChange();
      });
      th.appendChild(button);
      headRow.appendChild(th);
      return th;
    });
    this.tbody = el('tbody');
    this.table = el('table', options.tableClass || null, [el('thead', null, headRow), this.tbody]);
    append(options.container, [this.pagers[0].node, this.table, this.pagers[1].node]);
  }

  Table.prototype.makePager = function (withStatus) {
    var self = this;
    function button(label, title, go) {
      var b = el('button', null, label);
      b.type = 'button';
      b.title = title;
      b.addEventListener('click', function () { self.goTo(go()); });
      return b;
    }
    var pager = {
      first: button('«', 'first page', function () { return 0; }),
      prev: button('‹', 'previous page', function () { return self.page - 1; }),
      where: el('span', 'page'),
      next: button('›', 'next page', function () { return self.page + 1; }),
      last: button('»', 'last page', function () { return self.pageCount() - 1; })
    };
    var parts = [pager.first, pager.prev, pager.where, pager.next, pager.last];
    if (withStatus) {
      var size = el('select');
      PAGE_SIZES.forEach(function (n) { size.appendChild(option(String(n), n + ' per page')); });
      size.value = String(this.pageSize);
      size.addEventListener('change', function () { self.setPageSize(Number(size.value)); self.onChange(); });
      pager.size = size;
      parts = [this.status].concat(parts, [size]);
    }
    pager.node = el('div', 'pager', parts);
    return pager;
  };

  Table.prototype.pageCount = function () {
    return Math.max(1, Math.ceil(this.visible.length / this.pageSize));
  };

  Table.prototype.goTo = function (page) {
    this.page = Math.max(0, Math.min(page, this.pageCount() - 1));
    this.render();
    this.onChange();
  };

  Table.prototype.setPageSize = function (size) {
    if (PAGE_SIZES.indexOf(size) < 0) return;
    var first = this.page * this.pageSize;
    this.pageSize = size;
    this.pagers[0].size.value = String(size);
    this.page = Math.floor(first / size);
    this.render();
  };

  Table.prototype.sortKeys = function (column) {
    if (!this.keys[column]) this.keys[column] = this.rows.map(this.columns[column].key);
    return this.keys[column];
  };

  Table.prototype.sortBy = function (column, dir) {
    this.sortColumn = column;
    this.sortDir = dir;
    var order = range(this.rows.length);
    if (column >= 0) {
      var keys = this.sortKeys(column);
      // Ties keep the report's order (severity, code, document, line).
      order.sort(function (a, b) {
        var x = keys[a], y = keys[b];
        return x < y ? -dir : x > y ? dir : a - b;
      });
    }
    this.order = order;
    var self = this;
    this.headers.forEach(function (th, index) {
      if (index === column) th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    });
    this.apply(this.page);
  };

  Table.prototype.filter = function (predicate) {
    this.predicate = predicate;
    this.apply(0);
  };

  Table.prototype.apply = function (page) {
    var predicate = this.predicate, rows = this.rows;
    this.visible = predicate ? this.order.filter(function (i) { return predicate(rows[i], i); }) : this.order;
    this.page = Math.max(0, Math.min(page, this.pageCount() - 1));
    this.render();
  };

  Table.prototype.render = function () {
    var start = this.page * this.pageSize;
    var shown = this.visible.slice(start, start + this.pageSize);
    var body = el('tbody');
    for (var n = 0; n < shown.length; n++) {
      var row = this.rows[shown[n]];
      var tr = el('tr', this.rowClass ? this.rowClass(row) : null);
      for (var c = 0; c < this.columns.length; c++) {
        var column = this.columns[c];
        tr.appendChild(el('td', column.className || (column.numeric ? 'num' : null), column.cell(row)));
      }
      body.appendChild(tr);
    }
    if (!shown.length) {
      var td = el('td', 'empty', this.rows.length ? 'No ' + this.noun + ' match the filters.' : 'No ' + this.noun + '.');
      td.colSpan = this.columns.length;
      body.appendChild(el('tr', null, td));
    }
    this.table.replaceChild(body, this.tbody);
    this.tbody = body;
    var total = this.rows.length, count = this.visible.length;
    this.status.textContent = count
      ? 'Showing ' + (start + 1) + '–' + (start + shown.length) + ' of ' + count + ' ' + this.noun +
        (count === total ? '' : ' (filtered from ' + total + ')')
      : 'No ' + this.noun + ' shown (of ' + total + ')';
    var pages = this.pageCount(), page = this.page;
    this.pagers.forEach(function (pager) {
      pager.where.textContent = 'page ' + (page + 1) + ' of ' + pages;
      pager.first.disabled = pager.prev.disabled = page === 0;
      pager.next.disabled = pager.last.disabled = page >= pages - 1;
    });
  };

  function filterButton(label, onClick) {
    var b = el('button', 'filter-link', label);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  function numberKey(value) { return value === null || value === undefined ? -1 : value; }

  function pad(n) { return ('000000000' + (n || 0)).slice(-9); }

  // -- findings --------------------------------------------------------------
  var findings = DATA.findings.rows;
  var haystacks = null; // lower-cased text of each finding, built on the first search
  var stringIndex = null;

  function indexOfString(value) {
    if (!stringIndex) {
      stringIndex = new Map();
      for (var i = 0; i < S.length; i++) stringIndex.set(S[i], i);
    }
    return stringIndex.has(value) ? stringIndex.get(value) : -2;
  }

  function haystack(i) {
    if (!haystacks) {
      haystacks = findings.map(function (r) {
        var parts = [str(r[F.severity]), str(r[F.code]), str(r[F.document]) + ':' + (r[F.line] || ''), str(r[F.field]),
          str(r[F.url]), str(r[F.fetched_url]), str(r[F.status]), str(r[F.message]), str(r[F.expected]),
          str(r[F.actual]), str(r[F.final_url]), str(r[F.archived_url])];
        (r[F.redirects] || []).forEach(function (hop) { parts.push(hop[0] + ' ' + str(hop[1])); });
        return parts.join('\n').toLowerCase();
      });
    }
    return haystacks[i];
  }

  var findingColumns = [
    { label: 'severity', key: function (r) { return severityRank(str(r[F.severity])); },
      cell: function (r) { return str(r[F.severity]); } },
    { label: 'code', key: function (r) { return str(r[F.code]); },
      cell: function (r) { return r[F.new] ? [str(r[F.code]), ' ', el('span', 'badge new', 'new')] : str(r[F.code]); } },
    { label: 'where', key: function (r) { return str(r[F.document]) + '\u0000' + pad(r[F.line]); },
      cell: function (r) { return r[F.line] ? str(r[F.document]) + ':' + r[F.line] : str(r[F.document]); } },
    { label: 'field', key: function (r) { return str(r[F.field]); }, cell: function (r) { return str(r[F.field]); } },
    { label: 'URL', key: function (r) { return str(r[F.url]); }, cell: function (r) {
        var cell = [linkOrText(str(r[F.url]))];
        if (r[F.fetched_url] !== null) cell.push(el('div', 'fetched', ['fetched as ', linkOrText(str(r[F.fetched_url]))]));
        if (r[F.archived_url] !== null) cell.push(el('br'), archivedLink(str(r[F.archived_url]), str(r[F.archived_at])));
        return cell.length === 1 ? cell[0] : cell;
      } },
    { label: 'status', key: function (r) { return str(r[F.status]); }, cell: function (r) { return str(r[F.status]); } },
    { label: 'message', key: function (r) { return str(r[F.message]); }, cell: function (r) { return str(r[F.message]); } },
    { label: 'expected / actual', key: function (r) { return str(r[F.expected]) + '\u0000' + str(r[F.actual]); },
      cell: function (r) {
        if (r[F.expected] === null && r[F.actual] === null) return null;
        return [el('div', null, [el('span', 'label', 'expected'), ' ', str(r[F.expected]) || '—']),
          el('div', null, [el('span', 'label', 'actual'), ' ', str(r[F.actual]) || '—'])];
      } },
    { label: 'redirects', key: function (r) { return (r[F.redirects] || []).length; },
      cell: function (r) {
        if (!r[F.redirects]) return null;
        var list = el('ol', 'chain');
        r[F.redirects].forEach(function (hop) { list.appendChild(el('li', null, [String(hop[0]), ' ', linkOrText(str(hop[1]))])); });
        list.appendChild(el('li', null, ['→ ', linkOrText(str(r[F.final_url]))]));
        return list;
      } },
    { label: 'failing', numeric: true, key: function (r) { return r[F.failing_runs] || 0; },
      cell: function (r) {
        if (!r[F.failing_runs]) return null;
        var runs = r[F.failing_runs] + (r[F.failing_runs] > 1 ? ' runs' : ' run');
        return r[F.first_seen] ? runs + ', since ' + str(r[F.first_seen]) : runs;
      } }
  ];

  function countBy(column) {
    var counts = new Map();
    findings.forEach(function (r) { counts.set(r[column], (counts.get(r[column]) || 0) + 1); });
    return counts;
  }

  function selectOf(counts, allLabel, order) {
    var select = el('select');
    select.appendChild(option('', allLabel));
    var entries = Array.from(counts.keys()).map(function (i) { return [i, i === null ? '(none)' : str(i)]; });
    entries.sort(order || function (a, b) { return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0; });
    entries.forEach(function (entry) {
      select.appendChild(option(entry[0] === null ? '-' : String(entry[0]), entry[1] + ' (' + counts.get(entry[0]) + ')'));
    });
    return select;
  }

  var controls = {
    severity: selectOf(countBy(F.severity), 'all severities', function (a, b) {
      return severityRank(a[1]) - severityRank(b[1]);
    }),
    code: selectOf(countBy(F.code), 'all codes'),
    host: selectOf(countBy(F.host), 'all hosts'),
    document: el('input'),
    q: el('input'),
    only_new: el('input')
  };
  controls.document.type = 'search';
  controls.document.placeholder = 'path, or part of one';
  controls.q.type = 'search';
  controls.q.placeholder = 'search every column';
  controls.only_new.type = 'checkbox';
  controls.severity.id = 'filter-severity';
  controls.code.id = 'filter-code';
  controls.host.id = 'filter-host';
  controls.document.id = 'filter-document';
  controls.q.id = 'filter-search';
  controls.only_new.id = 'filter-new';

  // Real documents (not any string of the table), so a picked path matches exactly.
  var documentIndexes = new Set(DATA.documents.rows.map(function (d) { return d[D.document]; }));

  // Suggest documents, the ones with most findings first; thousands of options would only slow typing.
  var documentList = el('datalist');
  documentList.id = 'filter-document-list';
  DATA.documents.rows.slice(0, 2000).forEach(function (d) {
    documentList.appendChild(option(str(d[D.document]), str(d[D.document])));
  });
  controls.document.setAttribute('list', documentList.id);

  var reset = el('button', null, 'Reset filters');
  reset.type = 'button';

  var filterBar = el('div', 'filters', [
    labelled('severity', controls.severity), labelled('code', controls.code), labelled('host', controls.host),
    labelled('document', controls.document), documentList, labelled('search', controls.q),
    DATA.hasChanges ? labelled(' only new since the previous run', controls.only_new, 'check') : null,
    reset
  ]);
  var findingsApp = document.getElementById('findings-app');
  findingsApp.appendChild(filterBar);

  var findingsTable = new Table({
    container: findingsApp, rows: findings, columns: findingColumns, noun: 'findings', tableClass: 'findings',
    rowClass: function (r) { return SEVERITY_RANK[str(r[F.severity])] === undefined ? 'other' : str(r[F.severity]); },
    onChange: writeHash
  });

  function selected(select) {
    if (select.value === '') return undefined; // no filter
    return select.value === '-' ? null : Number(select.value);
  }

  function applyFilters() {
    var sev = selected(controls.severity), code = selected(controls.code), host = selected(controls.host);
    var documentText = controls.document.value.trim();
    var exactDocument = documentText ? indexOfString(documentText) : -2;
    var documentNeedle = documentText.toLowerCase();
    var documentMatches = new Map();
    var terms = controls.q.value.toLowerCase().split(/\s+/).filter(Boolean);
    var onlyNew = controls.only_new.checked;
    if (sev === undefined && code === undefined && host === undefined && !documentText && !terms.length && !onlyNew) {
      findingsTable.filter(null);
      return;
    }
    findingsTable.filter(function (r, i) {
      if (sev !== undefined && r[F.severity] !== sev) return false;
      if (code !== undefined && r[F.code] !== code) return false;
      if (host !== undefined && r[F.host] !== host) return false;
      if (onlyNew && !r[F.new]) return false;
      if (documentText) {
        // A document picked from the list matches exactly; typed text matches any path containing it.
        if (documentIndexes.has(exactDocument)) {
          if (r[F.document] !== exactDocument) return false;
        } else {
          var match = documentMatches.get(r[F.document]);
          if (match === undefined) {
            match = str(r[F.document]).toLowerCase().indexOf(documentNeedle) >= 0;
            documentMatches.set(r[F.document], match);
          }
          if (!match) return false;
        }
      }
      if (terms.length) {
        var text = haystack(i);
        for (var t = 0; t < terms.length; t++) if (text.indexOf(terms[t]) < 0) return false;
      }
      return true;
    });
  }

  function onFilterChange() { applyFilters(); writeHash(); }

  var searchTimer = null;
  function onType() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(onFilterChange, 120);
  }
  controls.severity.addEventListener('change', onFilterChange);
  controls.code.addEventListener('change', onFilterChange);
  controls.host.addEventListener('change', onFilterChange);
  controls.only_new.addEventListener('change', onFilterChange);
  controls.document.addEventListener('input', onType);
  controls.q.addEventListener('input', onType);
  reset.addEventListener('click', function () { clearFilters(); onFilterChange(); });

  function clearFilters() {
    controls.severity.value = controls.code.value = controls.host.value = '';
    controls.document.value = controls.q.value = '';
    controls.only_new.checked = false;
  }

  // -- state in the address (#severity=error&code=dead-link&page=2): shareable, survives reloads
  var SORT_NAMES = findingColumns.map(function (c) { return c.label.split(' ')[0].toLowerCase(); });

  function setSelect(select, value) {
    if (value === null) { select.value = ''; return; }
    var index = value === '(none)' ? '-' : String(indexOfString(value));
    select.value = index;
    if (select.value !== index) select.value = '';
  }

  function writeHash() {
    var params = new URLSearchParams();
    [['severity', controls.severity], ['code', controls.code], ['host', controls.host]].forEach(function (pair) {
      var v = pair[1].value;
      if (v !== '') params.set(pair[0], v === '-' ? '(none)' : str(Number(v)));
    });
    if (controls.document.value.trim()) params.set('document', controls.document.value.trim());
    if (controls.q.value.trim()) params.set('q', controls.q.value.trim());
    if (controls.only_new.checked) params.set('new', '1');
    if (findingsTable.sortColumn >= 0) {
      params.set('sort', SORT_NAMES[findingsTable.sortColumn]);
      params.set('dir', findingsTable.sortDir > 0 ? 'asc' : 'desc');
    }
    if (findingsTable.pageSize !== 100) params.set('size', String(findingsTable.pageSize));
    if (findingsTable.page) params.set('page', String(findingsTable.page + 1));
    var hash = params.toString();
    try {
      history.replaceState(null, '', hash ? '#' + hash : location.pathname + location.search);
    } catch (e) { /* some hosts forbid it; the filters still work */ }
  }

  function readHash() {
    var raw = location.hash.replace(/^#/, '');
    if (raw.indexOf('=') < 0) return false; // a plain anchor such as #hosts
    var params = new URLSearchParams(raw);
    clearFilters();
    setSelect(controls.severity, params.get('severity'));
    setSelect(controls.code, params.get('code'));
    setSelect(controls.host, params.get('host'));
    controls.document.value = params.get('document') || '';
    controls.q.value = params.get('q') || '';
    controls.only_new.checked = params.get('new') === '1' && DATA.hasChanges;
    var size = Number(params.get('size'));
    if (size) findingsTable.setPageSize(size);
    var sort = SORT_NAMES.indexOf(params.get('sort') || '');
    if (sort >= 0) findingsTable.sortBy(sort, params.get('dir') === 'desc' ? -1 : 1);
    applyFilters();
    var page = Number(params.get('page'));
    if (page > 1) findingsTable.goTo(page - 1);
    return true;
  }

  function showFindings(name, value) {
    clearFilters();
    if (name === 'document') controls.document.value = value;
    else setSelect(controls[name], value);
    onFilterChange();
    document.getElementById('findings').scrollIntoView();
  }

  // Links such as the codes in the summary carry their filter in data attributes.
  Array.prototype.forEach.call(document.querySelectorAll('a[data-filter]'), function (a) {
    a.addEventListener('click', function (event) {
      event.preventDefault();
      showFindings(a.getAttribute('data-filter'), a.getAttribute('data-value'));
    });
  });

  // -- hosts and documents: their containers come later in the page ----------
  function textFilter(container, placeholder, table, textOf) {
    var input = el('input');
    input.type = 'search';
    input.placeholder = placeholder;
    var timer = null;
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var needle = input.value.trim().toLowerCase();
        table.filter(needle ? function (row) { return textOf(row).toLowerCase().indexOf(needle) >= 0; } : null);
      }, 120);
    });
    container.insertBefore(el('div', 'filters', labelled('filter', input)), container.firstChild);
    return input;
  }

  function numeric(label, index) {
    return { label: label, numeric: true, key: function (r) { return numberKey(r[index]); },
      cell: function (r) { return r[index] === null ? '—' : String(r[index]); } };
  }

  function buildSideTables() {
    var hostsApp = document.getElementById('hosts-app');
    var hostsTable = new Table({
      container: hostsApp, rows: DATA.hosts.rows, noun: 'hosts', pageSize: 50, tableClass: 'compact hosts',
      columns: [
        { label: 'host', key: function (r) { return str(r[H.host]); }, cell: function (r) {
          var host = str(r[H.host]);
          return host ? filterButton(host, function () { showFindings('host', host); }) : '(no host)';
        } },
        numeric('URLs', H.urls), numeric('checked', H.checked), numeric('excluded', H.excluded), numeric('ok', H.ok),
        numeric('dead', H.dead),
        numeric('blocked', H.blocked), numeric('median ms', H.median_ms)
      ]
    });
    textFilter(hostsApp, 'part of a host name', hostsTable, function (r) { return str(r[H.host]); });

    var documentsApp = document.getElementById('documents-app');
    var documentsTable = new Table({
      container: documentsApp, rows: DATA.documents.rows, noun: 'documents', pageSize: 50,
      tableClass: 'compact documents',
      columns: [
        { label: 'document', className: 'where', key: function (r) { return str(r[D.document]); }, cell: function (r) {
          var path = str(r[D.document]);
          return r[D.errors] || r[D.warnings] ? filterButton(path, function () { showFindings('document', path); }) : path;
        } },
        numeric('references', D.references), numeric('errors', D.errors), numeric('warnings', D.warnings),
        { label: 'codes', key: function (r) { return str(r[D.codes]); }, cell: function (r) { return str(r[D.codes]); } }
      ]
    });
    textFilter(documentsApp, 'part of a path', documentsTable, function (r) { return str(r[D.document]); });
    hostsTable.render();
    documentsTable.render();
    hostsApp.hidden = documentsApp.hidden = false;
    document.documentElement.setAttribute('data-ready', 'true');
  }

  // -- start -----------------------------------------------------------------
  if (!readHash()) findingsTable.render();
  findingsApp.hidden = false;
  window.addEventListener('hashchange', readHash);
  document.documentElement.setAttribute('data-findings-ready', 'true');
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', buildSideTables);
  else buildSideTables();
})();
