# puppet_lookup_batch.rb for several nodes in one Puppet start: runs `puppet lookup`
# (Puppet::Application::Lookup, with its command-line handling) and, for each job, builds that
# node's scope from its facts file as `puppet lookup --node NODE --facts FILE` does, then answers
# the job's queries in it. A real tree costs one Puppet start instead of one per node.
#
#   HIERA_JOBS=jobs.json ruby puppet_lookup_nodes.rb <puppet lookup options, without --node/--facts>
#
# jobs.json: [{"node": "n1.example.com", "facts": "facts.json", "queries": "queries.json",
#              "results": "results.jsonl"}, ...]; queries and results as in puppet_lookup_batch.rb.
require_relative 'puppet_lookup_batch' # Puppet, and Lookup#answer

class Puppet::Application::Lookup
  def main
    renderer = Puppet::Network::FormatHandler.format(:json)
    JSON.parse(File.read(ENV.fetch('HIERA_JOBS'))).each do |job|
      options[:node] = job['node']
      options[:fact_file] = job['facts']
      queries = JSON.parse(File.read(job['queries']))
      File.open(job['results'], 'w') do |out|
        generate_scope do |scope|
          queries.each { |query| out.puts(JSON.generate(answer(scope, query, renderer))) }
        end
      end
    end
    exit(0)
  end
end

Puppet::Util::CommandLine.new('puppet', ['lookup'] + ARGV).execute
