//! HTML for the console: escaping, the page frame (navigation, style, the little script) and the
//! login page. Everything is built as text on the server; no file is fetched besides the page.

use axum::response::Html;

use super::auth::Caller;

/// Text as HTML: `& < > " '` escaped. Every value from a database or the file goes through this.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text as one part of a URL (a path segment or query value).
pub fn url_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub const CSS: &str = "\
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2329;background:#f6f7f9}\
header{background:#23313f;color:#fff;padding:.5em 1.2em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}\
header a{color:#d6e4f0;text-decoration:none}header a:hover{text-decoration:underline}\
header .who{margin-left:auto;color:#9fb3c8}header form{display:inline}\
main{padding:1em 1.2em;max-width:1200px}h1{font-size:1.35em;margin:.2em 0 .6em}h2{font-size:1.1em;margin:1.2em 0 .4em}\
table{border-collapse:collapse;background:#fff;margin:.4em 0 1em;width:100%}\
th,td{border:1px solid #d5dbe1;padding:.3em .55em;text-align:left;vertical-align:top}\
th{background:#eef1f4;font-weight:600}td.num{text-align:right}\
.diff{background:#fff1b8;font-weight:600}.bad{color:#a3191d}.ok{color:#1a6b2f}\
.msg{padding:.5em .8em;border-radius:4px;margin:.6em 0}.msg.err{background:#fde2e1}.msg.done{background:#dff3e4}\
form.filters{display:flex;gap:.6em;flex-wrap:wrap;align-items:end;margin-bottom:.6em}\
label{display:flex;flex-direction:column;font-size:.9em;gap:.15em}\
input,select,textarea,button{font:inherit;padding:.3em .45em}textarea{width:100%;min-height:4em}\
button{background:#2b5c8a;color:#fff;border:0;border-radius:4px;cursor:pointer}button:hover{background:#1f4568}\
code{font-size:.92em}.small{font-size:.85em;color:#5a6673}";

/// The page frame around `body`.
pub fn page(title: &str, caller: &Caller, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · tandem</title><style>{CSS}</style></head><body>\
         <header><strong>tandem</strong><a href=\"/\">Overview</a><a href=\"/conflicts?state=open\">Review queue</a>\
         <a href=\"/audit\">Audit log</a><a href=\"/dead-letters\">Dead letters</a><a href=\"/rules\">Rule set</a>\
         <span class=\"who\">{who}</span><form method=\"post\" action=\"/logout\"><button>Log out</button></form></header>\
         <main><h1>{t}</h1>{body}</main>{SCRIPT}</body></html>",
        t = esc(title),
        who = esc(&caller.name),
    ))
}

/// The little script: a form marked `data-confirm` asks before it is sent, and a button sent once
/// is disabled (a double click does not resolve twice).
const SCRIPT: &str = "<script>\
document.querySelectorAll('form').forEach(function(f){f.addEventListener('submit',function(e){\
var q=f.getAttribute('data-confirm');if(q&&!confirm(q)){e.preventDefault();return;}\
f.querySelectorAll('button').forEach(function(b){setTimeout(function(){b.disabled=true;},0);});});});\
</script>";

/// The login page; `next` is where to go after it.
pub fn login(next: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!("<p class=\"msg err\">{}</p>", esc(e)))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Log in · tandem</title><style>{CSS}</style></head><body>\
         <header><strong>tandem</strong></header><main><h1>Log in to the steward's console</h1>{error}\
         <form method=\"post\" action=\"/login\" style=\"max-width:28em\">\
         <label>Console token<input type=\"password\" name=\"token\" autocomplete=\"current-password\" required autofocus></label><br>\
         <label>Your name (goes into the audit record of what you resolve)<input name=\"name\" maxlength=\"100\"></label><br>\
         <input type=\"hidden\" name=\"next\" value=\"{next}\"><button>Log in</button></form>\
         <p class=\"small\">The token is the <code>[console] token</code> of tandem's configuration file. \
         The session lasts 12 hours or until tandem restarts.</p></main></body></html>",
        next = esc(next),
    ))
}

/// A message box.
pub fn message(text: &str, ok: bool) -> String {
    format!(
        "<p class=\"msg {}\">{}</p>",
        if ok { "done" } else { "err" },
        esc(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
