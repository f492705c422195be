// DOM helpers: elements are built with textContent only, so data from the
// ERP never becomes markup (no innerHTML anywhere in the portal).

/** h builds an element: h('td', {class: 'num'}, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** money formats {amount, currency}; prices a role may not see are null. */
export const money = (m) => (m ? `${Number(m.amount).toFixed(2)} ${m.currency}` : '—');
