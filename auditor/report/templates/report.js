// report.html's only script: tables built from the embedded JSON, one page of rows at a time.
// Every value from the corpus or the network goes into the page as a text node
// (never innerHTML); only http(s) URLs become links, as on the server side.
(function () {
  'use strict';

  var DATA = JSON.parse(document.getElementById('report-data').textContent);
  var S = DATA.strings;
  var WEB_URL = /^https?:\/\/[^\s\x00-\x1f\x7f]+$/i;
  var PAGE_SIZES = [50, 100, 250, 1000];
  var SEVERITY_RANK = { error: 0, warning: 1 };
  // Columns of a finding row in DATA.findings (see html_report._script_data).
  var SEV = 0, CODE = 1, DOC = 2, LINE = 3, FIELD = 4, URL = 5, HOST = 6, STATUS = 7, MESSAGE = 8,
    EXPECTED = 9, ACTUAL = 10, FINAL = 11, REDIRECTS = 12, NEW = 13;

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
  var findings = DATA.findings;
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
        var parts = [str(r[SEV]), str(r[CODE]), str(r[DOC]) + ':' + (r[LINE] || ''), str(r[FIELD]), str(r[URL]),
          str(r[STATUS]), str(r[MESSAGE]), str(r[EXPECTED]), str(r[ACTUAL]), str(r[FINAL])];
        (r[REDIRECTS] || []).forEach(function (hop) { parts.push(hop[0] + ' ' + str(hop[1])); });
        return parts.join('\n').toLowerCase();
      });
    }
    return haystacks[i];
  }

  var findingColumns = [
    { label: 'severity', key: function (r) { return SEVERITY_RANK[str(r[SEV])] === undefined ? 9 : SEVERITY_RANK[str(r[SEV])]; },
      cell: function (r) { return str(r[SEV]); } },
    { label: 'code', key: function (r) { return str(r[CODE]); },
      cell: function (r) { return r[NEW] ? [str(r[CODE]), ' ', el('span', 'badge new', 'new')] : str(r[CODE]); } },
    { label: 'where', key: function (r) { return str(r[DOC]) + '\u0000' + pad(r[LINE]); },
      cell: function (r) { return r[LINE] ? str(r[DOC]) + ':' + r[LINE] : str(r[DOC]); } },
    { label: 'field', key: function (r) { return str(r[FIELD]); }, cell: function (r) { return str(r[FIELD]); } },
    { label: 'URL', key: function (r) { return str(r[URL]); }, cell: function (r) { return linkOrText(str(r[URL])); } },
    { label: 'status', key: function (r) { return str(r[STATUS]); }, cell: function (r) { return str(r[STATUS]); } },
    { label: 'message', key: function (r) { return str(r[MESSAGE]); }, cell: function (r) { return str(r[MESSAGE]); } },
    { label: 'expected / actual', key: function (r) { return str(r[EXPECTED]) + '\u0000' + str(r[ACTUAL]); },
      cell: function (r) {
        if (r[EXPECTED] === null && r[ACTUAL] === null) return null;
        return [el('div', null, [el('span', 'label', 'expected'), ' ', str(r[EXPECTED]) || '—']),
          el('div', null, [el('span', 'label', 'actual'), ' ', str(r[ACTUAL]) || '—'])];
      } },
    { label: 'redirects', key: function (r) { return (r[REDIRECTS] || []).length; },
      cell: function (r) {
        if (!r[REDIRECTS]) return null;
        var list = el('ol', 'chain');
        r[REDIRECTS].forEach(function (hop) { list.appendChild(el('li', null, [String(hop[0]), ' ', linkOrText(str(hop[1]))])); });
        list.appendChild(el('li', null, ['→ ', linkOrText(str(r[FINAL]))]));
        return list;
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
    severity: selectOf(countBy(SEV), 'all severities', function (a, b) {
      return (SEVERITY_RANK[a[1]] === undefined ? 9 : SEVERITY_RANK[a[1]]) - (SEVERITY_RANK[b[1]] === undefined ? 9 : SEVERITY_RANK[b[1]]);
    }),
    code: selectOf(countBy(CODE), 'all codes'),
    host: selectOf(countBy(HOST), 'all hosts'),
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
  var documentIndexes = new Set(DATA.documents.map(function (d) { return d[0]; }));

  // Suggest documents, the ones with most findings first; thousands of options would only slow typing.
  var documentList = el('datalist');
  documentList.id = 'filter-document-list';
  DATA.documents.slice(0, 2000).forEach(function (d) { documentList.appendChild(option(str(d[0]), str(d[0]))); });
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
    rowClass: function (r) { return SEVERITY_RANK[str(r[SEV])] === undefined ? 'other' : str(r[SEV]); },
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
      if (sev !== undefined && r[SEV] !== sev) return false;
      if (code !== undefined && r[CODE] !== code) return false;
      if (host !== undefined && r[HOST] !== host) return false;
      if (onlyNew && !r[NEW]) return false;
      if (documentText) {
        // A document picked from the list matches exactly; typed text matches any path containing it.
        if (documentIndexes.has(exactDocument)) {
          if (r[DOC] !== exactDocument) return false;
        } else {
          var match = documentMatches.get(r[DOC]);
          if (match === undefined) {
            match = str(r[DOC]).toLowerCase().indexOf(documentNeedle) >= 0;
            documentMatches.set(r[DOC], match);
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
      container: hostsApp, rows: DATA.hosts, noun: 'hosts', pageSize: 50, tableClass: 'compact hosts',
      columns: [
        { label: 'host', key: function (r) { return r[0]; }, cell: function (r) {
          return r[0] ? filterButton(r[0], function () { showFindings('host', r[0]); }) : '(no host)';
        } },
        numeric('URLs', 1), numeric('checked', 2), numeric('ok', 3), numeric('dead', 4), numeric('blocked', 5),
        numeric('median ms', 6)
      ]
    });
    textFilter(hostsApp, 'part of a host name', hostsTable, function (r) { return r[0]; });

    var documentsApp = document.getElementById('documents-app');
    var documentsTable = new Table({
      container: documentsApp, rows: DATA.documents, noun: 'documents', pageSize: 50, tableClass: 'compact documents',
      columns: [
        { label: 'document', className: 'where', key: function (r) { return str(r[0]); }, cell: function (r) {
          return r[2] || r[3] ? filterButton(str(r[0]), function () { showFindings('document', str(r[0])); }) : str(r[0]);
        } },
        numeric('references', 1), numeric('errors', 2), numeric('warnings', 3),
        { label: 'codes', key: function (r) { return r[4]; }, cell: function (r) { return r[4]; } }
      ]
    });
    textFilter(documentsApp, 'part of a path', documentsTable, function (r) { return str(r[0]); });
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
