# Runs `puppet lookup` (Puppet::Application::Lookup, with all of its command-line handling, node
# and fact set-up) but looks up a whole batch of queries in the one compiled scope, so that a
# conformance case costs one Puppet start instead of one per key.
#
#   HIERA_QUERIES=queries.json HIERA_RESULTS=results.jsonl ruby puppet_lookup_batch.rb <puppet lookup options>
#
# queries.json: [{"key": "a" | ["a", "b"], "merge": "deep" | {"strategy": ...}, "default": ...,
#                 "type": "Puppet type"}, ...]
# results.jsonl: one line per query: {"status": "found", "json": "<puppet's JSON rendering>"},
# {"status": "notfound"} or {"status": "error", "class": ..., "message": ...}.
require 'json'
require 'puppet'
require 'puppet/util/command_line'
require 'puppet/application/lookup'

class Puppet::Application::Lookup
  def main
    queries = JSON.parse(File.read(ENV.fetch('HIERA_QUERIES')))
    renderer = Puppet::Network::FormatHandler.format(:json)
    File.open(ENV.fetch('HIERA_RESULTS'), 'w') do |out|
      generate_scope do |scope|
        queries.each do |query|
          invocation = Puppet::Pops::Lookup::Invocation.new(scope, {}, {}, nil)
          result = begin
            type = query['type'] && Puppet::Pops::Types::TypeParser.singleton.parse(query['type'], scope)
            value = Puppet::Pops::Lookup.lookup(query['key'], type, query['default'],
                                                query.key?('default'), query['merge'], invocation)
            { 'status' => 'found', 'json' => renderer.render(value) }
          rescue Puppet::DataBinding::LookupError => e
            if e.message.start_with?('Function lookup() did not find a value')
              { 'status' => 'notfound' }
            else
              { 'status' => 'error', 'class' => e.class.name, 'message' => e.message }
            end
          rescue StandardError => e
            { 'status' => 'error', 'class' => e.class.name, 'message' => e.message }
          end
          out.puts(JSON.generate(result))
        end
      end
    end
    exit(0)
  end
end

Puppet::Util::CommandLine.new('puppet', ['lookup'] + ARGV).execute
