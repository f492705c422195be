// The "Place an order" form, shown when erpgraph has writes on (the
// session's features.writes). It uses createSalesOrder: the customer must be
// one the user may order for, the products come from the catalogue, and an
// idempotency key per form makes a repeated submit (a double click, a retry
// after a lost answer) create the order once.
import { h } from './dom.js';

const CUSTOMERS_AND_PRODUCTS = `query PortalOrderForm {
  me { customerAccess { role permissions customer { id number name } shipToCustomer { id } } }
  products(first: 50, filter: { active: true }, orderBy: { field: PART_NUMBER }) { nodes { id partNumber name unit { code } } }
}`;

const CREATE = `mutation PortalCreateOrder($input: CreateSalesOrderInput!) {
  createSalesOrder(input: $input) { salesOrder { id documentNo } userErrors { field message code } }
}`;

/** orderForm builds the form; graphql is api.js's function. */
export async function orderForm(graphql) {
  const { data } = await graphql(CUSTOMERS_AND_PRODUCTS);
  const access = (data.me ? data.me.customerAccess : []).filter((a) => a.permissions.includes('VIEW_SALES_ORDERS'));
  const products = data.products ? data.products.nodes : [];
  if (!access.length) {
    return h('section', {}, h('h1', {}, 'Place an order'), h('p', { class: 'muted' }, 'Your role does not include ordering for any customer.'));
  }
  const idempotencyKey = crypto.randomUUID();
  const message = h('p', { id: 'order-message', role: 'status' });
  const customer = h('select', { id: 'customer', required: true },
    access.map((a, i) => h('option', { value: i }, `${a.customer.name} (${a.customer.number})`)));
  const product = h('select', { id: 'product', required: true },
    products.map((p) => h('option', { value: p.id }, `${p.partNumber} ${p.name || ''}`)));
  const quantity = h('input', { id: 'quantity', type: 'number', min: '1', step: '1', value: '1', required: true });
  const reference = h('input', { id: 'reference', maxlength: '20', placeholder: 'your purchase order number' });
  const wanted = h('input', { id: 'wanted', type: 'date' });
  const submit = h('button', { id: 'place-order', type: 'submit' }, 'Place order');
  const form = h('form', { class: 'order', novalidate: false },
    h('label', { for: 'customer' }, 'Customer'), customer,
    h('label', { for: 'product' }, 'Product'), product,
    h('label', { for: 'quantity' }, 'Quantity'), quantity,
    h('label', { for: 'reference' }, 'Reference'), reference,
    h('label', { for: 'wanted' }, 'Wanted by'), wanted,
    h('p', {}, submit), message);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    message.className = 'muted';
    message.textContent = 'Placing the order…';
    const a = access[Number(customer.value)];
    const input = {
      customerId: a.customer.id,
      lines: [{ productId: product.value, quantity: quantity.value }],
      idempotencyKey,
    };
    if (a.shipToCustomer) input.shipToCustomerId = a.shipToCustomer.id;
    if (reference.value) input.customerReference = reference.value;
    if (wanted.value) input.requiredDeliveryDate = wanted.value;
    try {
      const { data, errors } = await graphql(CREATE, { input });
      const payload = data && data.createSalesOrder;
      if (payload && payload.salesOrder) {
        location.hash = '#/orders/' + encodeURIComponent(payload.salesOrder.id);
        return;
      }
      const problems = payload ? payload.userErrors : errors;
      message.className = 'error';
      message.textContent = 'The order was not placed: ' + problems.map((e) => e.message).join('; ');
    } catch (e) {
      message.className = 'error';
      message.textContent = 'The order was not placed: ' + e.message;
    }
    submit.disabled = false;
  });
  return h('section', {}, h('h1', {}, 'Place an order'), form);
}
