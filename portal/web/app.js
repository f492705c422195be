// A small customer portal on erpgraph: sign in/out, a dashboard, an order
// page and (when erpgraph has writes on) a form to place an order. Routing
// is by URL hash (#/orders/…), so the files work from any path and need no
// server-side fallback. Elements are built with textContent only: data from
// the ERP never becomes markup.
import { currentUser, graphql, signInURL, SignedOut } from './api.js';
import { orderForm } from './order-form.js';
import { h, money } from './dom.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

const state = (s) => h('span', { class: 'badge' }, s.replaceAll('_', ' ').toLowerCase());
const orderTotal = (o) => {
  const lines = (o.lines || []).filter((l) => l.lineAmount);
  if (!lines.length) return null;
  return { amount: lines.reduce((sum, l) => sum + Number(l.lineAmount.amount), 0), currency: lines[0].lineAmount.currency };
};

function show(...nodes) {
  main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
}

function partial(errors) {
  return errors.length ? h('p', { class: 'error', role: 'alert' }, 'Some data could not be loaded: ' + errors.map((e) => e.message).join('; ')) : null;
}

function signedOut() {
  nav.replaceChildren();
  who.replaceChildren();
  show(
    h('h1', {}, 'Welcome'),
    h('p', {}, 'Sign in with your ERP.net account to see your orders, invoices and shipments.'),
    h('a', { class: 'button', id: 'sign-in', href: signInURL() }, 'Sign in'),
  );
}

const canOrder = (user) => Boolean(user.features && user.features.writes);

function header(user) {
  const links = [h('a', { href: '#/' }, 'Dashboard'), h('a', { href: '#/orders' }, 'Orders')];
  if (canOrder(user)) links.push(h('a', { href: '#/orders/new', id: 'new-order-link' }, 'Place an order'));
  nav.replaceChildren(...links);
  // Sign-out is a form POST: a top-level navigation that erpgraph redirects
  // to the identity server's end-session. The sid parameter in logoutUrl
  // stands in for the CSRF header a form cannot send.
  const form = h('form', { method: 'post', action: user.logoutUrl, id: 'sign-out-form' }, h('button', { class: 'secondary', id: 'sign-out' }, 'Sign out'));
  who.replaceChildren(h('span', { id: 'user-name' }, user.name || user.login), form);
}

const ORDER_FIELDS = `id documentNo documentDate state customer { name } lines { lineAmount { amount currency } }`;

function ordersTable(orders) {
  if (!orders.length) return h('p', { class: 'muted' }, 'No orders.');
  return h('table', { class: 'orders' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Order'), h('th', {}, 'Date'), h('th', {}, 'Customer'), h('th', {}, 'State'), h('th', { class: 'num' }, 'Total'))),
    h('tbody', {}, orders.map((o) => h('tr', { 'data-order': o.documentNo },
      h('td', {}, h('a', { href: '#/orders/' + encodeURIComponent(o.id) }, o.documentNo)),
      h('td', {}, o.documentDate), h('td', {}, o.customer ? o.customer.name : '—'), h('td', {}, state(o.state)),
      h('td', { class: 'num' }, money(orderTotal(o)))))));
}

async function dashboard(user) {
  const { data, errors } = await graphql(`query PortalDashboard {
    me { name customerAccess { role customer { number name } } }
    salesOrders(first: 5, orderBy: { field: DOCUMENT_DATE, direction: DESC }) { totalCount nodes { ${ORDER_FIELDS} } }
    invoices(first: 5, filter: { state: [RELEASED], void: false }, orderBy: { field: DOCUMENT_DATE, direction: DESC }) {
      totalCount nodes { id documentNo documentDate paymentDueDate customer { name } lines { lineAmount { amount currency } } } }
    shipments(first: 5, filter: { state: [PLANNED, FIRM_PLANNED, RELEASED], void: false }, orderBy: { field: DOCUMENT_DATE, direction: DESC }) {
      totalCount nodes { id documentNo documentDate state requiredDeliveryDate shipFromStore { name } } }
  }`);
  const access = data.me ? data.me.customerAccess : [];
  const invoices = data.invoices ? data.invoices.nodes : [];
  const shipments = data.shipments ? data.shipments.nodes : [];
  show(
    h('h1', {}, 'Hello, ' + (user.name || user.login)),
    partial(errors),
    access.length
      ? h('p', { class: 'muted' }, 'You act for: ' + access.map((a) => `${a.customer.name} (${a.role.replaceAll('_', ' ').toLowerCase()})`).join(', '))
      : h('p', { class: 'muted' }, 'Your account has no customer access yet.'),
    h('section', { id: 'recent-orders' }, h('h2', {}, 'Recent orders'), ordersTable(data.salesOrders ? data.salesOrders.nodes : [])),
    h('div', { class: 'cards' },
      h('section', { id: 'open-invoices' }, h('h2', {}, 'Open invoices'),
        invoices.length
          ? h('table', {}, h('tbody', {}, invoices.map((i) => h('tr', {}, h('td', {}, i.documentNo), h('td', {}, 'due ' + (i.paymentDueDate || '—')),
              h('td', { class: 'num' }, money(orderTotal(i)))))))
          : h('p', { class: 'muted' }, 'No open invoices.')),
      h('section', { id: 'shipments' }, h('h2', {}, 'Shipments on the way'),
        shipments.length
          ? h('table', {}, h('tbody', {}, shipments.map((s) => h('tr', {}, h('td', {}, s.documentNo), h('td', {}, state(s.state)),
              h('td', {}, s.requiredDeliveryDate ? 'expected ' + s.requiredDeliveryDate : s.documentDate)))))
          : h('p', { class: 'muted' }, 'Nothing on the way.'))),
  );
}

async function orders() {
  const { data, errors } = await graphql(`query PortalOrders {
    salesOrders(first: 50, orderBy: { field: DOCUMENT_DATE, direction: DESC }) { totalCount nodes { ${ORDER_FIELDS} } } }`);
  const conn = data.salesOrders || { totalCount: 0, nodes: [] };
  show(h('h1', {}, 'Orders'), partial(errors), h('p', { class: 'muted' }, `${conn.totalCount} orders; the latest 50:`), ordersTable(conn.nodes));
}

async function order(id) {
  const { data, errors } = await graphql(`query PortalOrder($id: ID!) {
    node(id: $id) { ... on SalesOrder { id documentNo documentDate state customerPurchaseOrderNo requiredDeliveryDate notes
      customer { number name }
      lines { lineNo product { partNumber name } quantity { value unit } unitPrice { amount currency } lineAmount { amount currency } } } } }`, { id });
  const o = data.node;
  if (!o) {
    show(h('h1', {}, 'Order not found'), h('p', { class: 'muted' }, 'It does not exist, or your account may not see it.'));
    return;
  }
  show(
    h('p', {}, h('a', { href: '#/orders' }, '← All orders')),
    h('h1', { id: 'order-title' }, 'Order ' + o.documentNo), partial(errors),
    h('p', {}, state(o.state), ' ', o.documentDate, o.customer ? ` · ${o.customer.name} (${o.customer.number})` : '',
      o.customerPurchaseOrderNo ? ` · your reference ${o.customerPurchaseOrderNo}` : ''),
    o.notes ? h('p', { class: 'muted' }, o.notes) : null,
    h('table', { class: 'lines' },
      h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Product'), h('th', { class: 'num' }, 'Quantity'), h('th', { class: 'num' }, 'Unit price'), h('th', { class: 'num' }, 'Amount'))),
      h('tbody', {}, (o.lines || []).map((l) => h('tr', {},
        h('td', {}, l.lineNo), h('td', {}, l.product ? `${l.product.partNumber} ${l.product.name || ''}` : '—'),
        h('td', { class: 'num' }, `${l.quantity.value} ${l.quantity.unit || ''}`), h('td', { class: 'num' }, money(l.unitPrice)),
        h('td', { class: 'num' }, money(l.lineAmount)))))),
    h('p', { class: 'num' }, h('strong', {}, 'Total ' + money(orderTotal(o)))),
  );
}

async function route() {
  let user;
  try {
    user = await currentUser();
  } catch (e) {
    show(h('p', { class: 'error', role: 'alert' }, 'erpgraph is not reachable: ' + e.message));
    return;
  }
  if (!user) {
    signedOut();
    return;
  }
  header(user);
  const path = location.hash.replace(/^#/, '') || '/';
  try {
    if (path === '/') await dashboard(user);
    else if (path === '/orders') await orders();
    else if (path === '/orders/new' && canOrder(user)) show(await orderForm(graphql));
    else if (path.startsWith('/orders/')) await order(decodeURIComponent(path.slice('/orders/'.length)));
    else show(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/' }, 'Back to the dashboard')));
  } catch (e) {
    if (e instanceof SignedOut) signedOut();
    else show(h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

window.addEventListener('hashchange', route);
route();
