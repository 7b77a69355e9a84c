-- Drives Neovim (0.7+) against `storytransformer lsp` with the documented configuration: open a story
-- file, wait for diagnostics, apply a quick fix, wait for the diagnostics to follow, write what happened
-- as JSON, quit.
-- Environment: ST_PYTHON, ST_CONFIG (the Lua configuration docs/lsp.md shows), ST_ROOT, ST_FILE, ST_OUT,
-- ST_FIX_LINE (0-based line of a fixable story), ST_ACTION (the title of the quick fix to apply; empty: ST301's fix),
-- ST_WAIT_CODE (a code to wait for; empty: any diagnostic), ST_HOVER ("line:col", 0-based: hover there), ST_COMPLETE (text typed on a new last line, then completion),
-- ST_SYMBOLS ("1": ask for the document's outline), ST_RENAME ("line:col:new name", 0-based: rename there and apply the edit).
local out = {}

local function finish()
  local f = io.open(os.getenv("ST_OUT"), "w")
  f:write(vim.fn.json_encode(out))
  f:close()
  vim.cmd("qa!")
end

local function diagnostics(buf)
  local found = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    local lsp = (d.user_data or {}).lsp or {}
    local related = {}
    for _, r in ipairs(lsp.relatedInformation or {}) do
      table.insert(related, { uri = r.location.uri, line = r.location.range.start.line })
    end
    table.insert(found, {
      code = d.code or lsp.code, line = d.lnum, col = d.col, end_col = d.end_col,
      source = d.source or lsp.source, message = d.message, related = related,
    })
  end
  return found
end

local function run()
  -- the configuration docs/lsp.md shows (docs/editors/storytransformer.lua), as a user installs it
  local st = dofile(os.getenv("ST_CONFIG"))
  st.setup({ cmd = { os.getenv("ST_PYTHON"), "-m", "storytransformer", "lsp" },
             init_options = { daemon = { spawn = false } } })
  vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("ST_FILE")))
  local buf = vim.api.nvim_get_current_buf()
  -- a client is listed once it has initialized
  vim.wait(60000, function() return next(vim.lsp.buf_get_clients(buf)) ~= nil end, 50)
  local client_id = next(vim.lsp.buf_get_clients(buf))
  out.client_started = client_id ~= nil
  out.filetype = vim.bo[buf].filetype
  -- ST_WAIT_CODE: wait for a finding of the full check (a duplicate, say), not only the first look
  local wait_code = os.getenv("ST_WAIT_CODE") or ""
  out.got_diagnostics = vim.wait(60000, function()
    for _, d in ipairs(vim.diagnostic.get(buf)) do
      if wait_code == "" or (d.code or ((d.user_data or {}).lsp or {}).code) == wait_code then return true end
    end
    return false
  end, 50)
  out.before = diagnostics(buf)

  local hover = os.getenv("ST_HOVER") or ""
  if hover ~= "" then
    local line, col = hover:match("(%d+):(%d+)")
    local params = { textDocument = vim.lsp.util.make_text_document_params(buf),
                     position = { line = tonumber(line), character = tonumber(col) } }
    local responses = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 20000) or {}
    for _, resp in pairs(responses) do
      if resp.result and resp.result.contents then
        out.hover = resp.result.contents.value or resp.result.contents
        -- what Neovim itself shows in its hover window
        out.hover_lines = vim.lsp.util.convert_input_to_markdown_lines(resp.result.contents)
      end
    end
  end

  if (os.getenv("ST_SYMBOLS") or "") == "1" then
    local params = { textDocument = vim.lsp.util.make_text_document_params(buf) }
    local responses = vim.lsp.buf_request_sync(buf, "textDocument/documentSymbol", params, 20000) or {}
    out.symbols = {}
    for _, resp in pairs(responses) do
      -- the items as Neovim's own :lua vim.lsp.buf.document_symbol() lists them
      for _, item in ipairs(vim.lsp.util.symbols_to_items(resp.result or {}, buf)) do
        table.insert(out.symbols, { text = item.text, line = item.lnum })
      end
    end
  end

  local rename = os.getenv("ST_RENAME") or ""
  if rename ~= "" then
    local line, col, new_name = rename:match("(%d+):(%d+):(.+)")
    local params = { textDocument = vim.lsp.util.make_text_document_params(buf),
                     position = { line = tonumber(line), character = tonumber(col) }, newName = new_name }
    local responses = vim.lsp.buf_request_sync(buf, "textDocument/rename", params, 20000) or {}
    for _, resp in pairs(responses) do
      if resp.error then out.rename_error = resp.error.message end
      if resp.result then
        vim.lsp.util.apply_workspace_edit(resp.result, "utf-16")
        out.renamed = true
      end
    end
    out.lines_after_rename = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
    -- the other files the edit touched: Neovim loads each into a buffer and edits it there (unsaved)
    out.buffers_after_rename = {}
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if b ~= buf and vim.api.nvim_buf_is_loaded(b) and vim.api.nvim_buf_get_name(b) ~= "" then
        out.buffers_after_rename[vim.fn.fnamemodify(vim.api.nvim_buf_get_name(b), ":t")] =
          vim.api.nvim_buf_get_lines(b, 0, -1, false)
      end
    end
  end

  local typed = os.getenv("ST_COMPLETE") or ""
  if typed ~= "" then
    local last = vim.api.nvim_buf_line_count(buf)
    vim.api.nvim_buf_set_lines(buf, last, last, false, { typed })
    vim.wait(300)
    local params = { textDocument = vim.lsp.util.make_text_document_params(buf),
                     position = { line = last, character = #typed } }
    local responses = vim.lsp.buf_request_sync(buf, "textDocument/completion", params, 20000) or {}
    out.completions = {}
    for _, resp in pairs(responses) do
      local result = resp.result or {}
      -- the items as Neovim's own completion (omnifunc) turns them into complete-items
      for _, item in ipairs(vim.lsp.util.text_document_completion_list_to_complete_items(result, "")) do
        table.insert(out.completions, item.word)
      end
    end
  end

  local fix_line = tonumber(os.getenv("ST_FIX_LINE") or "-1")
  if fix_line >= 0 then
    local params = {
      textDocument = vim.lsp.util.make_text_document_params(buf),
      range = { start = { line = fix_line, character = 0 }, ["end"] = { line = fix_line, character = 0 } },
      context = { diagnostics = {}, only = { "quickfix" } },
    }
    local responses = vim.lsp.buf_request_sync(buf, "textDocument/codeAction", params, 20000) or {}
    out.actions = {}
    local chosen
    local wanted = os.getenv("ST_ACTION") or ""
    for _, resp in pairs(responses) do
      for _, action in ipairs(resp.result or {}) do
        table.insert(out.actions, action.title)
        if not chosen and action.edit and action.diagnostics and action.diagnostics[1]
            and ((wanted == "" and action.diagnostics[1].code == "ST301") or action.title == wanted) then
          chosen = action
        end
      end
    end
    if chosen then
      vim.lsp.util.apply_workspace_edit(chosen.edit, "utf-16")
      out.fixed_line = vim.api.nvim_buf_get_lines(buf, fix_line, fix_line + 1, false)[1]
      out.fix_cleared = vim.wait(30000, function()
        for _, d in ipairs(vim.diagnostic.get(buf)) do
          if (d.code or ((d.user_data or {}).lsp or {}).code) == "ST301" then return false end
        end
        return true
      end, 50)
      out.after = diagnostics(buf)
    end
  end
  if client_id then vim.lsp.stop_client(client_id) end
end

local ok, err = pcall(run)
if not ok then out.error = tostring(err) end
finish()
