-- StoryTransformer for Neovim 0.7 and later: attach `storytransformer lsp` to every format it reads.
-- Save as ~/.config/nvim/lua/storytransformer.lua and put `require("storytransformer").setup()` in init.lua.
-- The end-to-end test (tests/e2e/test_neovim_lsp.py) loads this very file.
local M = {}

-- Neovim's filetypes for the server's formats: plain text stories, Markdown backlogs,
-- Gherkin (*.feature is "cucumber"), CSV exports ("csv" in 0.8+; Debian's 0.7 leaves it unset, see below).
M.filetypes = { "text", "markdown", "cucumber", "csv" }
M.root_markers = { ".storytransformer.toml", "pyproject.toml", ".git" }

-- The nearest folder above the buffer holding a marker, else the working directory (works on 0.7).
local function root_dir(buf)
  local dir = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ":p:h")
  for _, marker in ipairs(M.root_markers) do
    local found = vim.fn.findfile(marker, dir .. ";")
    if found == "" then found = vim.fn.finddir(marker, dir .. ";") end
    if found ~= "" then return vim.fn.fnamemodify(found, ":p:h"):gsub("/%.git/?$", "") end
  end
  return vim.fn.getcwd()
end

local clients = {} -- root -> client id (0.7, which has no vim.lsp.start to reuse clients)

function M.attach(buf, opts)
  local config = {
    name = "storytransformer",
    cmd = opts.cmd or { "storytransformer", "lsp" },
    root_dir = root_dir(buf),
    init_options = opts.init_options or { debounceMs = 150 },
    settings = opts.settings or { storytransformer = {} },
  }
  -- completion without a plugin: <C-x><C-o> (0.11+ can do better, see docs/lsp.md)
  vim.bo[buf].omnifunc = "v:lua.vim.lsp.omnifunc"
  if vim.lsp.start then -- 0.8+: starts the client once per root and attaches the buffer
    return vim.lsp.start(config, { bufnr = buf })
  end
  local id = clients[config.root_dir]
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client(config)
    clients[config.root_dir] = id
  end
  vim.lsp.buf_attach_client(buf, id)
  return id
end

function M.setup(opts)
  opts = opts or {}
  -- Neovim 0.7 has no "csv" filetype: give *.csv one, so exports are attached too.
  vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
    pattern = "*.csv",
    callback = function(args)
      if vim.bo[args.buf].filetype == "" then vim.bo[args.buf].filetype = "csv" end
    end,
  })
  vim.api.nvim_create_autocmd("FileType", {
    pattern = M.filetypes,
    callback = function(args) M.attach(args.buf, opts) end,
  })
end

return M
